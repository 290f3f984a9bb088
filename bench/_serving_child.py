"""The child processes whose peak memory bench/serving.py reports, one job per process.

    python bench/_serving_child.py export CHECKPOINT VERSION_DIR [OPTION=VALUE ...]
    python bench/_serving_child.py model_part CHECKPOINT FOLDER [OPTION=VALUE ...]
    python bench/_serving_child.py serve SAVED_MODEL REQUESTS_JSON

Each prints one JSON line; export and serve report their peak resident set size (VmHWM). A
fresh process per job is the only way to get a peak that belongs to that job alone. `serve`
imports TensorFlow and nothing else, like a model server; `export` and `model_part` import
tfpipe only inside their jobs for that reason.
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
# As in _serving_contenders, which this TensorFlow-only process does not import.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def pipeline_options(assignments: tuple[str, ...]) -> dict[str, int | None]:
    """`max_chunk_tokens=off micro_batch_size=4` → integer pipeline options, 'off' → None."""
    options = {}
    for assignment in assignments:
        name, value = assignment.split("=")
        options[name] = None if value == "off" else int(value)
    return options


def classification_pipeline(checkpoint: str, options: tuple[str, ...]):
    """tfpipe's text-classification pipeline with `options` (imported here: see above)."""
    import tfpipe

    return tfpipe.pipeline(
        "text-classification", model=checkpoint, max_length=MAX_LENGTH,
        **pipeline_options(options),
    )


def export(checkpoint: str, version_dir: str, *options: str) -> dict:
    """Build the classification pipeline and export it (with export's own self-check child)."""
    import tfpipe

    start = time.perf_counter()
    model = classification_pipeline(checkpoint, options)
    tfpipe.export(model, version_dir, overwrite=True, serving_base_path=None)
    # ru_maxrss of waited-for children, in KiB on Linux: export's TF-only self-check process.
    self_check_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "self_check_peak_rss_mb": self_check_kib / 1024,
    }


def model_part(checkpoint: str, folder: str, *options: str) -> dict:
    """The pipeline's layers after its tokenizer (the transformer with its chunking and
    packing, probabilities, label lookup) saved with an ids-in signature: what the export of
    the same options runs beside tokenization, so that its batch-1 latency is tokenization's
    anchor."""
    start = time.perf_counter()
    model = classification_pipeline(checkpoint, options)
    layers = [model.get_layer(name) for name in ("transformer", "probabilities", "label_lookup")]
    transformer, probabilities, label_lookup = layers
    specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in MODEL_INPUTS]

    @tf.function(input_signature=specs)
    def classify(input_ids, attention_mask, token_type_ids):
        ids = (input_ids, attention_mask, token_type_ids)
        scores = probabilities(transformer(dict(zip(MODEL_INPUTS, ids, strict=True))))
        return {"probabilities": scores, **label_lookup(scores)}

    module = tf.Module()
    module.layers = layers
    tf.saved_model.save(module, folder, signatures={"serving_default": classify})
    return {"seconds": time.perf_counter() - start}


def serve(saved_model: str, requests_json: str) -> dict:
    """Load a SavedModel, answer every request once, then read the peak.

    Requests are feeds by input name: strings for tfpipe's export, ids for the model-only one.
    """
    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    loaded_rss = peak_rss_mb()
    for request in json.loads(Path(requests_json).read_text(encoding="utf-8")):
        signature(**{name: tf.constant(value) for name, value in request.items()})
    return {"loaded_peak_rss_mb": loaded_rss, "peak_rss_mb": peak_rss_mb()}


JOBS = {"export": export, "model_part": model_part, "serve": serve}

if __name__ == "__main__":
    print(json.dumps(JOBS[sys.argv[1]](*sys.argv[2:])))
