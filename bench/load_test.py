"""Concurrent load on one loaded SavedModel: no errors, identical results, flat memory.

A model server runs one loaded model for many concurrent requests. This loads an exported
tfpipe SavedModel once (`tf.saved_model.load`, the `serving_default` signature), computes
the single-threaded answer to a fixed set of mixed-length requests, warms up, then lets
`--threads` threads send random requests from that set for `--seconds`. It reports requests
served, errors, results that differ from the single-threaded ones (bit for bit, strings
included) and resident memory after warm-up and after the run, and exits with status 1 when
anything fails: an error, a difference, or memory growing by more than `--max-rss-growth`.

    .venv/bin/python bench/load_test.py saved_models/sentiment/1 --seconds 60 --threads 16
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from _common import load_texts


def resident_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def make_requests(texts: list[str], count: int, seed: int) -> list[list[str]]:
    """Batches of 1 to 16 texts of mixed lengths, some cut to a few words, some long."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        batch = []
        for _ in range(rng.randint(1, 16)):
            text = rng.choice(texts)
            batch.append(text[: rng.choice((20, 200, 2000, len(text)))])
        requests.append(batch)
    return requests


def as_numpy(outputs: dict) -> dict[str, np.ndarray]:
    return {name: value.numpy() for name, value in outputs.items()}


def identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k])
        for k in a
    )


def run(path: str, threads: int, seconds: float, requests: int, seed: int) -> dict:
    serve = tf.saved_model.load(path).signatures["serving_default"]
    batches = make_requests(load_texts(None)[0], requests, seed)

    def call(batch: list[str]) -> dict[str, np.ndarray]:
        return as_numpy(serve(text=tf.constant(batch)))

    expected = [call(batch) for batch in batches]
    for batch in batches:  # warm-up: every shape once more, then measure memory
        call(batch)
    rss_warm = resident_bytes()
    counts = {"requests": 0, "errors": 0, "mismatches": 0}
    first_problem: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(seed + index)
        while time.monotonic() < deadline:
            which = rng.randrange(len(batches))
            try:
                same = identical(call(batches[which]), expected[which])
                problem = None if same else f"request {which}: result differs"
            except Exception as error:  # counted and reported, never lost
                same, problem = False, f"request {which}: {type(error).__name__}: {error}"
            with lock:
                counts["requests"] += 1
                if problem:
                    counts["errors" if "differs" not in problem else "mismatches"] += 1
                    first_problem[:] = first_problem or [problem]

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    rss_after = resident_bytes()
    return {
        **counts,
        "threads": threads,
        "seconds": round(elapsed, 1),
        "requests_per_second": round(counts["requests"] / elapsed, 1),
        "rss_after_warmup_mb": round(rss_warm / 2**20, 1),
        "rss_after_run_mb": round(rss_after / 2**20, 1),
        "rss_growth": round(rss_after / rss_warm - 1, 4) if rss_warm else None,
        "first_problem": first_problem[0] if first_problem else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", help="an exported version folder, e.g. saved_models/x/1")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--requests", type=int, default=64, help="distinct requests in the mix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rss-growth", type=float, default=0.10)
    args = parser.parse_args(argv)
    report = run(args.saved_model, args.threads, args.seconds, args.requests, args.seed)
    print(json.dumps(report))
    failed = report["errors"] or report["mismatches"] or report["requests"] == 0
    grew = report["rss_growth"] is not None and report["rss_growth"] > args.max_rss_growth
    return int(bool(failed or grew))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
