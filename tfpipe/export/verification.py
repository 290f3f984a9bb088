"""The checks an export passes before it lands: an op audit of the SavedModel, then the
self-check child (``_serve_check.py``) loading it in a fresh TensorFlow-only process, whose
outputs must match the in-memory model's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfpipe.export.errors import ExportError
from tfpipe.export.graph_audit import foreign_ops, graph_op_types
from tfpipe.export.runtime_compat import MINIMUM_TENSORFLOW, load_table, unsupported_nodes
from tfpipe.export.saved_model import tokenize_inputs, write_json
from tfpipe.tokenization.tokenizer_core import TokenizerCore

SERVE_CHECK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_serve_check.py")
SELF_CHECK_TIMEOUT_SECONDS = 600


def expected_outputs(
    model, tokenizer: TokenizerCore, inputs: dict[str, list[str]]
) -> dict[str, dict[str, np.ndarray]]:
    """What the in-memory model (tf-keras or Keras 3) and tokenizer give for the warmup
    inputs."""
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    outputs = model(tensors, training=False)
    encoded = tokenize_inputs(tokenizer, list(tensors.values()))
    return {
        "serving_default": {name: np.asarray(value) for name, value in outputs.items()},
        "tokenize": {name: np.asarray(value) for name, value in encoded.items()},
    }


def run_self_check(
    export_dir: Path,
    inputs: dict[str, list[str]],
    work_dir: Path,
    signatures: tuple[str, ...] = ("serving_default", "tokenize"),
) -> dict[str, Any]:
    """Run ``_serve_check.py`` on ``export_dir`` in a fresh Python without tfpipe, feeding
    ``inputs`` to each of ``signatures``."""
    request_path = work_dir / "request.json"
    report_path = work_dir / "report.json"
    write_json(request_path, dict.fromkeys(signatures, inputs))
    environment = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    completed = subprocess.run(
        [sys.executable, SERVE_CHECK_SCRIPT, str(export_dir), str(request_path), str(report_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=SELF_CHECK_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        last_lines = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise ExportError(
            f"the SavedModel does not load and run in TensorFlow alone:\n{last_lines}"
        )
    return json.loads(report_path.read_text(encoding="utf-8"))


def saved_model_graphs(export_dir: Path) -> list:
    """The GraphDef of every meta graph in a SavedModel."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (export_dir / "saved_model.pb").read_bytes()
    )
    return [meta_graph.graph_def for meta_graph in saved_model.meta_graphs]


def saved_model_op_types(export_dir: Path) -> set[str]:
    """Op types of every meta graph in a SavedModel, function library included."""
    return set().union(*(graph_op_types(graph) for graph in saved_model_graphs(export_dir)))


def check_ops(export_dir: Path) -> None:
    """Fail fast, before the subprocess, on ops no stock model server has, or that model
    servers older than runtime_compat.MINIMUM_TENSORFLOW would run differently."""
    refuse_foreign_ops(sorted(foreign_ops(saved_model_op_types(export_dir))))
    table = load_table()
    newer = set().union(*(unsupported_nodes(g, table) for g in saved_model_graphs(export_dir)))
    if newer:
        raise ExportError(
            f"the graph uses ops TensorFlow {MINIMUM_TENSORFLOW} cannot run as exported, "
            f"which would raise the minimum TF Serving version: {', '.join(sorted(newer))}"
        )


def refuse_foreign_ops(foreign: list[str]) -> None:
    if foreign:
        raise ExportError("the graph uses ops stock TF Serving cannot run: " + ", ".join(foreign))


def verify_report(
    report: dict[str, Any], expected: dict[str, dict[str, np.ndarray]], atol: float
) -> None:
    """Fail on foreign ops, stray imports, or outputs that differ from the in-memory model."""
    refuse_foreign_ops(report["foreign_ops"])
    if report["error"]:
        raise ExportError(f"the SavedModel fails in TensorFlow alone: {report['error']}")
    if report["imported_modules"]:
        raise ExportError(
            "the self-check process imported " + ", ".join(report["imported_modules"])
        )
    for signature, outputs in expected.items():
        served = report["outputs"][signature]
        if set(served) != set(outputs):
            raise ExportError(
                f"{signature} returns {sorted(served)}, the model returns {sorted(outputs)}"
            )
        for name, want in outputs.items():
            if not outputs_match(np.asarray(served[name]), want, atol):
                raise ExportError(f"{signature} output {name!r} differs from the in-memory model")


def outputs_match(served: np.ndarray, expected: np.ndarray, atol: float) -> bool:
    if expected.dtype == object:
        decoded = np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(expected)
        return served.shape == decoded.shape and bool(np.all(served == decoded))
    if served.shape != expected.shape:
        return False
    if np.issubdtype(expected.dtype, np.integer):
        return bool(np.array_equal(served, expected))
    return bool(np.allclose(served, expected, rtol=0.0, atol=atol))
