"""Load a SavedModel the way TF Serving does and report its outputs and op audit.

Run as a script (``python _serve_check.py SAVED_MODEL REQUEST_JSON REPORT_JSON``) in a fresh
process that imports only TensorFlow: not tfpipe, not tensorflow-text. Whatever this process
can run, a stock model server can. The request JSON maps signature names to
``{input name: [strings]}``; the report holds every fetched output plus the op audit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
# Running by path puts this package folder on sys.path; drop it so no tfpipe module loads.
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != SCRIPT_DIR]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def load_graph_audit():
    """graph_audit.py, beside this script, by file path: it imports only TensorFlow."""
    spec = importlib.util.spec_from_file_location(
        "_tfpipe_graph_audit", os.path.join(SCRIPT_DIR, "graph_audit.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_json_value(array: np.ndarray) -> list:
    if array.dtype == object:
        return np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(array).tolist()
    return array.tolist()


def check_saved_model(saved_model_dir: str, requests: dict[str, dict[str, list[str]]]) -> dict:
    """TF1 ``loader.load`` under the ``serve`` tag, op audit, then each signature by tensor name.

    The audit is reported even when loading or running fails, so a caller can say why.
    """
    graph_audit = load_graph_audit()
    report = {"outputs": {}, "signatures": {}, "op_types": [], "foreign_ops": [], "error": None}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model_dir)
            op_types = graph_audit.graph_op_types(meta_graph.graph_def)
            op_types |= graph_audit.graph_op_types(graph.as_graph_def())
            report["op_types"] = sorted(op_types)
            report["foreign_ops"] = sorted(graph_audit.foreign_ops(op_types))
            report["signatures"] = {
                name: {"inputs": sorted(signature.inputs), "outputs": sorted(signature.outputs)}
                for name, signature in meta_graph.signature_def.items()
            }
            for signature_name, inputs in requests.items():
                signature = meta_graph.signature_def[signature_name]
                report["outputs"][signature_name] = run_signature(session, signature, inputs)
        except Exception as error:  # reported to the exporting process, which explains it
            report["error"] = f"{type(error).__name__}: {error}".strip().splitlines()[0]
    report["imported_modules"] = sorted(
        name for name in ("tfpipe", "tensorflow_text", "transformers") if name in sys.modules
    )
    return report


def run_signature(session, signature, inputs: dict[str, list[str]]) -> dict[str, list]:
    feed = {
        signature.inputs[name].name: np.asarray(values, dtype=object)
        for name, values in inputs.items()
    }
    fetches = {name: tensor.name for name, tensor in signature.outputs.items()}
    fetched = session.run(fetches, feed_dict=feed)
    return {name: as_json_value(value) for name, value in fetched.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: _serve_check.py SAVED_MODEL REQUEST_JSON REPORT_JSON", file=sys.stderr)
        return 2
    saved_model_dir, request_path, report_path = argv
    with open(request_path, encoding="utf-8") as file:
        requests = json.load(file)
    report = check_saved_model(saved_model_dir, requests)
    with open(report_path, "w", encoding="utf-8") as file:
        json.dump(report, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
