"""Run the test files in a few pytest processes, two at a time, and print one combined summary.

Every parity file builds dozens of compiled tokenizers; in one process their graphs and tables
add up to more memory than the 24 GB CI machine has, so each gets a process of its own. The
other files share processes in groups (GROUPS): TensorFlow is imported once per group, and
files using the same tiny checkpoints and exports (tests/model_fixtures.py,
tests/pipeline_checkpoints.py) build them once, in the group that uses them. Two processes
run at once, longest first: on 2 cores one process's single-threaded stretches (imports, HF
tokenizers, tracing) leave a core idle, and the largest two fit in memory.

Prints each process's wall time, peak RSS and slowest tests as it ends, then each file's
time (from the ``file seconds:`` lines tests/conftest.py prints), the total wall time, and
last the line CI reads: ``N passed, N failed, N skipped``.

Usage: python tests/run_isolated.py [--jobs N] [PYTEST_ARGS...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).parent
COUNTS = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "errors")
# The processes and their files, longest first (by this script's report), so that the last
# to start are short; a test file named nowhere runs alone after these.
GROUPS = (
    # The exports the TF 2.12 runtime loads, built by the pipeline and task tests that check
    # them; the pad-token tests reuse the GPT-2 checkpoint and its traced model.
    ("test_old_runtime.py", "test_sentencepiece_pipelines.py", "test_bpe_pipelines.py",
     "test_token_classification.py", "test_question_answering.py", "test_fill_mask.py",
     "test_pad_token_and_aliases.py", "test_reference_loading.py"),
    # MiniLM's pipelines and its classifier export, at every level.
    ("test_bad_input.py", "test_bench_smoke.py", "test_build_checks.py", "test_chunking.py",
     "test_packing.py", "test_cli.py", "test_concurrent_load.py", "test_coverage.py",
     "test_export.py", "test_heads.py", "test_models.py", "test_pipelines.py", "test_serving.py",
     "test_untrusted_files.py", "test_unconverted.py", "test_einsum_transposes.py",
     "test_beam.py"),
    ("test_sentencepiece_parity.py", "test_added_tokens.py", "test_overflow.py"),
    ("test_components.py", "test_tokenizer_layer.py", "test_unigram_long_words.py",
     "test_unigram_whole_pieces.py", "test_word_cache.py",
     "test_decoders.py", "test_word_ids.py"),
    # Offsets, piece by piece and end to end (a process of its own: the group above is long).
    ("test_offsets.py",),
    # Oniguruma patterns and the component types of issue 19: every code point, and trained
    # tokenizers whose whole-corpus pair runs take HF minutes in make test-full; the probed
    # code-point tables, built in runs and a code point at a time.
    ("test_regex.py", "test_more_components.py", "test_codepoint_tables.py"),
    ("test_bpe_parity.py",),
    ("test_wordpiece_parity.py",),
    # tfpipe.keras (Keras 3, keras-hub): a process of its own, never beside tf-keras models.
    ("test_keras3_pipelines.py", "test_keras3_tokenizer.py", "test_keras3_fine_tune.py"),
)


@dataclass
class Run:
    """One pytest process: its files, output, exit code, wall time and peak RSS."""

    files: list[Path]
    output: str = ""
    returncode: int = 0
    seconds: float = 0.0
    peak_rss_gb: float = 0.0

    @property
    def name(self) -> str:
        return " ".join(path.name for path in self.files)


def plan() -> list[list[Path]]:
    """Process groups: GROUPS (files that exist), then each file named in none, alone."""
    files = {path.name: path for path in sorted(TESTS.glob("test_*.py"))}
    groups = [[files.pop(name) for name in group if name in files] for group in GROUPS]
    return [group for group in groups if group] + [[path] for path in files.values()]


def run(files: list[Path], args: list[str]) -> Run:
    """Run pytest on ``files`` in a child process; wait4 gives that child's peak RSS."""
    result = Run(files)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "--durations=8", *args, *map(str, files)],
            stdout=output, stderr=subprocess.STDOUT, text=True,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        result.output = output.read()
    result.returncode = child.returncode
    result.seconds = time.perf_counter() - started
    result.peak_rss_gb = usage.ru_maxrss / 2**20  # kilobytes on Linux
    return result


def summary_counts(output: str) -> dict[str, int]:
    lines = output.strip().splitlines()
    counts = dict.fromkeys(COUNTS, 0)
    for number, word in re.findall(r"(\d+) (\w+)", lines[-1] if lines else ""):
        if word in counts:
            counts[word] += int(number)
    return counts


def main(argv: list[str]) -> int:
    jobs = 2
    if argv[:1] == ["--jobs"]:
        jobs, argv = int(argv[1]), argv[2:]
    started = time.perf_counter()
    runs: list[Run] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run, files, argv) for files in plan()]
        for future in as_completed(futures):
            finished = future.result()
            runs.append(finished)
            print(f"== {finished.name}: {finished.seconds:.0f} s, "
                  f"peak RSS {finished.peak_rss_gb:.1f} GB", flush=True)
            print(finished.output, end="", flush=True)
    wall = time.perf_counter() - started
    print("\n== seconds per test file (its tests' setup, call and teardown)")
    for finished in sorted(runs, key=lambda r: -r.seconds):
        for path, seconds in re.findall(r"^file seconds: (\S+) ([\d.]+)$", finished.output, re.M):
            print(f"{float(seconds):8.1f}  {Path(path).name}")
        print(f"{finished.seconds:8.1f}  = process wall time: {finished.name}")
    print(f"total wall time: {wall:.0f} s ({wall / 60:.1f} min) with {jobs} processes at once")
    totals = dict.fromkeys(COUNTS, 0)
    crashed = 0
    for finished in runs:
        for word, number in summary_counts(finished.output).items():
            totals[word] += number
        # 0: passed, 1: tests failed, 5: nothing collected; anything else (killed, internal
        # error, interrupted) loses that process's results, so it counts as a failure.
        if finished.returncode not in (0, 1, 5):
            print(f"!! {finished.name}: pytest exited with {finished.returncode}")
            crashed += 1
    failed = totals["failed"] + totals["error"] + totals["errors"] + crashed
    skipped = totals["skipped"] + totals["xfailed"]
    print(f"{totals['passed']} passed, {failed} failed, {skipped} skipped")
    return int(failed > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
