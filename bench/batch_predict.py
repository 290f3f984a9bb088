"""`tfpipe batch-predict` on the DirectRunner against a plain Python loop over the same export.

Every contender is a child process over the same text file (course corpus lines, one per
line) and writes JSON lines, timed from start to exit (TensorFlow's import and the export's
load included, as a user waits for them): the loop (`--loop`: `tf.saved_model.load`, the
`serving_default` signature on batches of 32 in file order, or sorted by length first, one
JSON line per text), and `python -m tfpipe batch-predict` with 1 and 2 DirectRunner workers
(threads, and for 2 also processes). Rounds are interleaved, the order rotating, so load
from other processes on a shared machine slows every contender of a round alike; medians are
reported. Each contender also runs on an empty file: its start-up, which the "after start-up"
rate leaves out. Without SAVED_MODEL it uses the tests' cached tiny classifier export.

    .venv/bin/python bench/batch_predict.py --texts 6400 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, load_texts, machine_line, markdown_table, median, today
from predict_stream import tiny_export

LOOP_BATCH = 32
# label -> (DirectRunner workers, running mode), or the loop: None in file order, "sorted"
# over the texts sorted by length first (what batch-predict's calls do within a Beam batch).
CONTENDERS = {
    "Python loop, batches of 32": None,
    "Python loop, length-sorted batches of 32": "sorted",
    "batch-predict, 1 worker": (1, "multi_threading"),
    "batch-predict, 2 workers (threads, the default)": (2, "multi_threading"),
    "batch-predict, 2 workers (processes)": (2, "multi_processing"),
}


def run_loop(saved_model: str, texts_file: str, output: str, order: str) -> None:
    """The baseline: the signature on batches of LOOP_BATCH lines (in file order, or sorted
    by length), JSON lines out."""
    import tensorflow as tf

    sys.path.insert(0, str(REPO))
    from tfpipe.cli_io import json_value

    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    lines = Path(texts_file).read_bytes().splitlines()
    if order == "sorted":
        lines.sort(key=len)
    with open(output, "wb") as out:
        for start in range(0, len(lines), LOOP_BATCH):
            batch = lines[start : start + LOOP_BATCH]
            outputs = {k: v.numpy() for k, v in signature(text=tf.constant(batch)).items()}
            for row, text in enumerate(batch):
                record = {"text": text.decode("utf-8", errors="replace")}
                record.update((k, json_value(outputs[k][row])) for k in sorted(outputs))
                out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")


def command(saved_model: Path, texts_file: Path, out: Path, contender) -> list[str]:
    if contender is None or contender == "sorted":
        return [sys.executable, __file__, "--loop", str(saved_model), str(texts_file), str(out),
                str(contender)]  # fmt: skip
    workers, mode = contender
    return [sys.executable, "-m", "tfpipe", "batch-predict", str(saved_model),
            "--input", str(texts_file), "--output", str(out / "part"),
            f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]  # fmt: skip


def output_lines(out: Path) -> int:
    files = [out] if out.is_file() else sorted(out.glob("part-[0-9]*.jsonl"))
    return sum(len(path.read_bytes().splitlines()) for path in files)


def timed_run(argv: list[str], out: Path, expected: int) -> float:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=environment, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if output_lines(out) != expected:
        raise SystemExit(f"{argv[:4]}: {output_lines(out)} output lines for {expected} texts")
    return seconds


def measure(saved_model: Path, files: dict[str, tuple[Path, int]], repeats: int) -> dict:
    """Seconds of each (contender, file) run: every file per contender, rounds interleaved."""
    names = list(CONTENDERS)
    seconds: dict[tuple[str, str], list[float]] = {
        (name, kind): [] for name in names for kind in files
    }
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                for kind, (texts_file, count) in files.items():
                    out = Path(folder) / f"{round_index}-{names.index(name)}-{kind}"
                    if isinstance(CONTENDERS[name], tuple):
                        out.mkdir()
                    argv = command(saved_model, texts_file, out, CONTENDERS[name])
                    seconds[name, kind].append(timed_run(argv, out, count))
                    print(f"  {name}, {kind}: {seconds[name, kind][-1]:.1f} s", flush=True)
    return seconds


def report(seconds: dict[tuple[str, str], list[float]], count: int) -> str:
    """Wall time, start-up (the empty file's run), and texts/s overall and after start-up,
    each against the first contender (the loop in file order)."""
    rates = {}
    for name in CONTENDERS:
        wall, startup = median(seconds[name, "texts"]), median(seconds[name, "empty"])
        rates[name] = (wall, startup, count / wall, count / max(wall - startup, 1e-9))
    _, _, loop_rate, loop_steady = rates[next(iter(CONTENDERS))]
    rows = [
        [name, f"{wall:.1f} s", f"{startup:.1f} s", f"{rate:,.0f}", f"{rate / loop_rate:.2f}×",
         f"{steady:,.0f}", f"{steady / loop_steady:.2f}×",
         " / ".join(f"{run:.1f}" for run in seconds[name, "texts"])]
        for name, (wall, startup, rate, steady) in rates.items()
    ]  # fmt: skip
    headers = ["contender", "wall", "start-up", "texts/s", "vs loop", "texts/s after start-up",
               "vs loop", "each run (s)"]  # fmt: skip
    return markdown_table(headers, rows)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--loop"]:
        run_loop(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", nargs="?", type=Path, help="default: the tiny export")
    parser.add_argument("--texts", type=int, default=6400)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    saved_model = args.saved_model or tiny_export()
    texts, source = load_texts(args.texts)
    with tempfile.TemporaryDirectory() as folder:
        texts_file, empty_file = Path(folder) / "texts.txt", Path(folder) / "empty.txt"
        texts_file.write_text("".join(" ".join(t.split()) + "\n" for t in texts), "utf-8")
        empty_file.write_text("")
        files = {"texts": (texts_file, len(texts)), "empty": (empty_file, 0)}
        seconds = measure(saved_model, files, args.repeats)
    print(f"{today()}, {machine_line()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"export: {saved_model}")
    print(f"texts: the first {len(texts):,} of {source}")
    print(report(seconds, len(texts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
