"""The child processes whose peak memory bench/serving.py reports, one job per process.

    python bench/_serving_child.py export CHECKPOINT VERSION_DIR [OPTION=VALUE ...]
    python bench/_serving_child.py serve SAVED_MODEL REQUESTS_JSON

Each prints one JSON line with its peak resident set size (VmHWM). A fresh process per job
is the only way to get a peak that belongs to that job alone. `serve` imports TensorFlow and
nothing else, like a model server; `export` imports tfpipe only inside its job for that reason.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import tensorflow as tf
from _common import peak_rss_mb

MAX_LENGTH = 128


def pipeline_options(assignments: tuple[str, ...]) -> dict[str, int | None]:
    """`max_chunk_tokens=off micro_batch_size=4` → integer pipeline options, 'off' → None."""
    options = {}
    for assignment in assignments:
        name, value = assignment.split("=")
        options[name] = None if value == "off" else int(value)
    return options


def export(checkpoint: str, version_dir: str, *options: str) -> dict:
    """Build the classification pipeline and export it (with export's own self-check child)."""
    import tfpipe

    start = time.perf_counter()
    model = tfpipe.pipeline(
        "text-classification", model=checkpoint, max_length=MAX_LENGTH,
        **pipeline_options(options),
    )
    tfpipe.export(model, version_dir, overwrite=True, serving_base_path=None)
    # ru_maxrss of waited-for children, in KiB on Linux: export's TF-only self-check process.
    self_check_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "self_check_peak_rss_mb": self_check_kib / 1024,
    }


def serve(saved_model: str, requests_json: str) -> dict:
    """Load a SavedModel, answer every request once, then read the peak.

    Requests are feeds by input name: strings for tfpipe's export, ids for the model-only one.
    """
    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    loaded_rss = peak_rss_mb()
    for request in json.loads(Path(requests_json).read_text(encoding="utf-8")):
        signature(**{name: tf.constant(value) for name, value in request.items()})
    return {"loaded_peak_rss_mb": loaded_rss, "peak_rss_mb": peak_rss_mb()}


JOBS = {"export": export, "serve": serve}

if __name__ == "__main__":
    print(json.dumps(JOBS[sys.argv[1]](*sys.argv[2:])))
