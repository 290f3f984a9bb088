"""One loaded SavedModel under 16 concurrent request threads (bench/load_test.py): an 8 s
soak by default, a 2-minute one in a full run (slow).

The script runs in its own process, so a crash is a failed test, not a lost test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from model_fixtures import exported_classifier
from samples import slow_beyond

LOAD_TEST = Path(__file__).resolve().parents[1] / "bench" / "load_test.py"


@pytest.mark.parametrize("seconds", slow_beyond([8, 120], [8]))
def test_sixteen_threads_get_single_threaded_results_without_errors_or_memory_growth(seconds):
    completed = subprocess.run(
        [sys.executable, str(LOAD_TEST), str(exported_classifier().path),
         "--threads", "16", "--seconds", str(seconds), "--max-rss-growth", "0.10"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.stdout.strip(), completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert completed.returncode == 0, report
    assert report["errors"] == 0 and report["mismatches"] == 0, report
    assert report["requests"] >= 16, report
    assert report["rss_growth"] <= 0.10, report
