"""`tfpipe predict --file` on a long file: texts/s and the CLI process's peak RSS.

A pool of `BASELINE_BATCHES` batches of texts (the first course corpus lines, or generated
sentences) is written once as the baseline file and cycled to `--lines` lines as the long
one; each runs as `python -m tfpipe predict SAVED_MODEL --file F --batch-size N` in a child
process, stdout to a file, its peak RSS from wait4. Both files hold the same batches, so
streaming means the long run's peak stays at the baseline's, whatever the length.
Without SAVED_MODEL it uses the tests' cached tiny classifier export (a 2-layer BERT with
MiniLM's tokenizer), building it if needed.

    .venv/bin/python bench/predict_stream.py --lines 100000
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, load_texts, machine_line, today

BASELINE_BATCHES = 80


def tiny_export() -> Path:
    """The tests' cached tiny classifier export (tests/model_fixtures.py)."""
    sys.path.insert(0, str(REPO / "tests"))
    from model_fixtures import exported_classifier

    return exported_classifier().path


def write_texts(path: Path, pool: list[str], count: int) -> None:
    lines = itertools.islice(itertools.cycle(pool), count)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def run_predict(saved_model: Path, texts_file: Path, batch_size: int) -> tuple[float, int, float]:
    """(seconds, output lines, peak RSS in MiB) of one `tfpipe predict` process."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tfpipe", "predict", str(saved_model),
               "--file", str(texts_file), "--batch-size", str(batch_size)]  # fmt: skip
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=output, env=environment)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"tfpipe predict exited with {child.returncode}")
        output.seek(0)
        lines = sum(1 for _ in output)
    return seconds, lines, usage.ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", nargs="?", type=Path, help="default: the tiny export")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    saved_model = args.saved_model or tiny_export()
    texts, source = load_texts(BASELINE_BATCHES * args.batch_size)
    pool = [" ".join(text.split()) for text in texts]  # one text per line
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in (len(pool), args.lines):
            texts_file = Path(folder) / f"{count}.txt"
            write_texts(texts_file, pool, count)
            runs[count] = run_predict(saved_model, texts_file, args.batch_size)
            if runs[count][1] != count:
                raise SystemExit(f"{runs[count][1]} output lines for {count} input lines")
    print(f"{today()}, {machine_line()}, --batch-size {args.batch_size}, {saved_model}")
    print(f"texts: the first {len(pool):,} of {source}")
    for count, (seconds, _, peak_mib) in runs.items():
        print(f"{count:>7,} lines: {seconds:6.1f} s in all, peak RSS {peak_mib:,.0f} MiB")
    (base_seconds, *_), (seconds, *_) = runs.values()
    rate = (args.lines - len(pool)) / (seconds - base_seconds)
    print(f"{rate:,.0f} texts/s beyond the first {len(pool):,} (start-up excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
