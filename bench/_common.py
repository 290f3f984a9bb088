"""Helpers shared by the benchmarks: texts, machine facts, interleaved timing, docs blocks.

Benchmarks run on small, shared, noisy machines, so timing is interleaved (every contender
runs once per repetition, in rotating order) and medians are reported: a burst of load from
another process then slows all contenders of that repetition alike instead of one of them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "course.jsonl"
BENCHMARKS_DOC = REPO / "docs" / "benchmarks.md"

# Words of several scripts for the generated fallback corpus: enough variety to exercise
# normalisation, CJK splitting, punctuation and sub-word splitting when ../shared is absent.
_WORDS = (
    "the quick brown fox jumps over lazy dog tokenizer transformers TensorFlow serving "
    "isn't state-of-the-art unaffable running e-mail Hugging Face pipeline 2024 3.14 "
    "héllo naïve café Über straße über résumé Привет мир данные Γειά σου κόσμε "
    "你好 世界 分词器 こんにちは 東京 안녕하세요 세계 مرحبا بالعالم שלום नमस्ते 🤗 🚀 ! ? , . ; ( )"
)


def load_texts(max_texts: int | None) -> tuple[list[str], str]:
    """(texts, where they came from): the shared course corpus, else generated sentences."""
    if CORPUS.is_file():
        with CORPUS.open(encoding="utf-8") as lines:
            texts = [json.loads(line)["text"] for line in lines if line.strip()]
        source = f"../shared/corpus/{CORPUS.name}: {len(texts)} lines, 22 languages"
    else:
        texts = generate_texts(24_000)
        source = "generated multilingual sentences (../shared/corpus absent)"
    return (texts[:max_texts] if max_texts else texts), source


def generate_texts(count: int, seed: int = 20240601) -> list[str]:
    """Deterministic sentences of 1 to 60 words, about as long as the course corpus lines."""
    rng = random.Random(seed)
    words = _WORDS.split()
    return [" ".join(rng.choices(words, k=rng.randint(1, 60))) for _ in range(count)]


def cpu_model() -> str:
    """The CPU model name as /proc/cpuinfo reports it (platform's guess elsewhere)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    return match.group(1).strip() if match else platform.machine()


def package_version(name: str) -> str:
    """Installed version of a distribution, or "absent"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def today() -> str:
    return datetime.date.today().isoformat()


def time_interleaved(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup_rounds: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each contender over `repeats` rounds, after untimed warm-up rounds.

    Each round runs every contender once; the starting contender rotates so none is always
    first (right after another's garbage or thread pool activity).
    """
    names = list(contenders)
    for _ in range(warmup_rounds):
        for name in names:
            contenders[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def time_interleaved_blocks(
    contenders: dict[Hashable, Callable[[], object]], calls: int, block: int, warmup_calls: int = 3
) -> dict[Hashable, list[float]]:
    """Seconds per call of each contender, `calls` calls each, timed in blocks of `block`
    consecutive calls (after `warmup_calls` untimed ones); blocks interleave as rounds do in
    `time_interleaved`.

    For latency: a server answers a stream of requests with one model, its weights warm in
    the caches. Interleaving call by call makes every call find the previous contender's
    weights in the caches instead (tens of MB each), a cold start that no deployment sees.
    """
    names = list(contenders)
    seconds: dict[Hashable, list[float]] = {name: [] for name in names}
    for round_index in range(-(-calls // block)):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(warmup_calls):
                contenders[name]()
            for _ in range(min(block, calls - len(seconds[name]))):
                start = time.perf_counter()
                contenders[name]()
                seconds[name].append(time.perf_counter() - start)
    return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table; the first column left-aligned, the others right-aligned."""
    align = [":--"] + ["--:"] * (len(headers) - 1)
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def replace_block(path: Path, name: str, content: str) -> None:
    """Replace the text between the `name` start/end markers of `path`, or append the block.

    The file is read right before writing and nothing outside the markers changes, so
    edits made to the rest of the file while the benchmark ran are kept.
    """
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{content.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start in text and end in text.split(start, 1)[1]:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def cpu_count() -> int:
    return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM, Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    """This process's resident set size now (VmRSS, Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def command_line(script: str) -> str:
    """How this run was started, venv included (`make bench` runs in .venv-bench)."""
    return " ".join([f"{Path(sys.prefix).name}/bin/python bench/{script}", *sys.argv[1:]])


def machine_line() -> str:
    return f"{cpu_model()}, os.cpu_count() = {cpu_count()}"


def parse_with_quick(
    parser: argparse.ArgumentParser, argv: list[str], quick: dict[str, object]
) -> argparse.Namespace:
    """Parse `argv`; with --quick, `quick` replaces the defaults (explicit flags still win).

    Quick runs only prove the suite works, so they never write docs/benchmarks.md.
    """
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: tiny repeat counts, docs untouched"
    )
    args = parser.parse_args(argv)
    if args.quick:
        if getattr(args, "write_docs", False):
            parser.error("--quick numbers are not for the docs: drop --write-docs")
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    return args
