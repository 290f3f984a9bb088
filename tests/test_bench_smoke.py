"""`make bench` must not rot between the runs that refresh docs/benchmarks.md: a tiny tokenizer
run, in make test-full (it measures nothing `make test` needs).

bench/serving.py is left to `make bench BENCH_ARGS=--quick` (about two minutes: it exports
twice).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOKENIZER_BENCH = Path(__file__).resolve().parents[1] / "bench" / "tokenizer.py"


@pytest.mark.slow
def test_tokenizer_benchmark_quick_run_prints_a_parity_checked_row():
    completed = subprocess.run(
        [sys.executable, str(TOKENIZER_BENCH), "--quick", "--tokenizers", "minilm",
         "--batch-sizes", "32", "--max-texts", "64"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| minilm")]
    assert len(rows) == 1, completed.stdout
    assert rows[0].startswith("| minilm (WordPiece) | 32 |") and "| 100% |" in rows[0], rows
