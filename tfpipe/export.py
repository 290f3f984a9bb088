"""``tfpipe.export``: a pipeline model as a TF Serving model version, verified before it lands.

Layout written under a base folder (e.g. ``saved_models/``)::

    saved_models/models.config                 TF Serving model_config_list, every model here
    saved_models/batching_parameters.txt       server-side batching, written once, then yours
    saved_models/NAME/VERSION/saved_model.pb   signatures: serving_default, tokenize
    saved_models/NAME/VERSION/tfpipe.json      task, labels, max_length, versions
    saved_models/NAME/VERSION/assets.extra/tf_serving_warmup_requests

The version is written to a hidden sibling folder, loaded back in a fresh process that
imports only TensorFlow (the TF1 ``serve`` loader TF Serving uses), compared with the
in-memory model and op-audited; only then is it renamed into place, so a model server
polling the folder never sees a broken version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
import transformers
from tensorflow.core.protobuf import saved_model_pb2

from tfpipe.graph_audit import foreign_ops, graph_op_types
from tfpipe.heads import CandidateSimilarity, EntailmentProbabilities, LabelLookup
from tfpipe.runtime_compat import MINIMUM_TENSORFLOW, load_table, unsupported_nodes
from tfpipe.tokenization.layer import TokenizerLayer

METADATA_FILE = "tfpipe.json"
MODELS_CONFIG_FILE = "models.config"
BATCHING_PARAMETERS_FILE = "batching_parameters.txt"
# A starting point for --enable_batching on CPU, from bench/serving.py's batch-size sweep of
# the MiniLM export (README, "Served end to end"): with micro_batch_size=4, batches of 32 reach
# 90-95% of the best rate (at 64-128) while a request waits for at most 31 others; without it
# the rate is flat from 1 to 128 texts. A 1 ms timeout is about a tenth of a batch-1 request.
BATCHING_PARAMETERS = """\
# TensorFlow Serving batching for the models in this folder (written once by tfpipe export;
# later exports keep your edits). Use it with:
#   tensorflow_model_server --enable_batching --batching_parameters_file=THIS_FILE ...
# max_batch_size: see the batch-size sweep in tfpipe's README (bench/serving.py); batching
#   pays on CPU for models exported with micro_batch_size. num_batch_threads: the server's cores.
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
SERVE_CHECK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_serve_check.py")
STRING_INPUTS = ("text", "text_pair")
DEFAULT_WARMUP_TEXTS = (
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "",
)
SELF_CHECK_TIMEOUT_SECONDS = 600


class ExportError(RuntimeError):
    """The model cannot be exported, or the exported SavedModel failed its self-check."""


@dataclass(frozen=True)
class ExportedModel:
    """Where an export went and what its self-check saw."""

    path: Path
    models_config: Path
    batching_parameters: Path
    metadata: dict[str, Any]
    op_types: list[str]
    # serving_default outputs for the warmup texts, from the TensorFlow-only reload.
    served_outputs: dict[str, list]


@dataclass(frozen=True)
class VersionPath:
    """``BASE/NAME/VERSION``, the layout TF Serving's file system source polls."""

    base: Path
    name: str
    version: int

    @classmethod
    def parse(cls, path: str | os.PathLike) -> VersionPath:
        resolved = Path(path).absolute()
        if not resolved.name.isdigit() or int(resolved.name) <= 0:
            raise ExportError(
                f"export path {path} must end in NAME/VERSION with VERSION a positive integer, "
                "e.g. saved_models/sentiment/1 (TF Serving only loads numbered versions)"
            )
        if not resolved.parent.name or resolved.parent.name.startswith("."):
            raise ExportError(f"export path {path} needs a model name folder before the version")
        return cls(resolved.parent.parent, resolved.parent.name, int(resolved.name))

    @property
    def model_dir(self) -> Path:
        return self.base / self.name

    @property
    def version_dir(self) -> Path:
        return self.model_dir / str(self.version)


def export(
    model: tf_keras.Model,
    path: str | os.PathLike,
    *,
    warmup_texts: Sequence[str] = DEFAULT_WARMUP_TEXTS,
    warmup_text_pairs: Sequence[str] | None = None,
    overwrite: bool = False,
    serving_base_path: str | None = "/models",
    atol: float = 1e-4,
) -> ExportedModel:
    """Write ``model`` as SavedModel version ``path`` (``BASE/NAME/VERSION``) and verify it.

    ``serving_base_path`` is where the model server sees ``BASE`` (``/models`` in the
    tensorflow/serving image, mounted from ``BASE``); ``None`` writes local absolute paths
    into models.config. Raises ExportError when the reloaded model disagrees with ``model``
    beyond ``atol`` or uses an op a stock model server does not have.
    """
    target = VersionPath.parse(path)
    input_names = string_input_names(model)
    if target.version_dir.exists() and not overwrite:
        raise ExportError(f"{target.version_dir} exists; pass overwrite=True to replace it")
    requests = warmup_inputs(input_names, warmup_texts, warmup_text_pairs)
    target.model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tfpipe-{target.version}-", dir=target.model_dir))
    try:
        export_dir = staging / "model"
        tokenizer = find_tokenizer(model)
        save_serving_model(model, tokenizer, input_names, export_dir)
        write_warmup_requests(export_dir, target.name, requests)
        metadata = pipeline_metadata(model, tokenizer, input_names, target)
        write_json(export_dir / METADATA_FILE, metadata)
        check_ops(export_dir)
        report = run_self_check(export_dir, requests, staging)
        verify_report(report, expected_outputs(model, tokenizer, requests), atol)
        if target.version_dir.exists():
            shutil.rmtree(target.version_dir)
        export_dir.rename(target.version_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    models_config = write_models_config(target.base, serving_base_path)
    return ExportedModel(
        target.version_dir,
        models_config,
        write_batching_parameters(target.base),
        metadata,
        report["op_types"],
        report["outputs"]["serving_default"],
    )


def string_input_names(model: tf_keras.Model) -> list[str]:
    """The model's dict inputs, checked to be ``text`` (and ``text_pair``) string vectors."""
    if not isinstance(model.input, dict) or not isinstance(model.output, dict):
        raise ExportError("export needs a functional model with dict inputs and dict outputs")
    names = list(model.input)
    if "text" not in names or not set(names) <= set(STRING_INPUTS):
        raise ExportError(
            f"export needs inputs 'text' (and optionally 'text_pair'), the model has {names}"
        )
    for name, tensor in model.input.items():
        if tensor.dtype != tf.string or tensor.shape.rank != 1:
            raise ExportError(f"model input {name!r} must be tf.string of shape [batch]")
    return [name for name in STRING_INPUTS if name in names]


def find_tokenizer(model: tf_keras.Model) -> TokenizerLayer:
    tokenizers = [layer for layer in model.submodules if isinstance(layer, TokenizerLayer)]
    if len(tokenizers) != 1:
        raise ExportError(
            f"export needs exactly one TokenizerLayer in the model, found {len(tokenizers)}"
        )
    return tokenizers[0]


def string_specs(input_names: Sequence[str]) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None], tf.string, name=name) for name in input_names]


class ServingModule(tf.Module):
    """What the signatures capture: the tokenizer layer and the model's variables.

    The variables are held as a plain list, not through the Keras model: saving a Keras
    model object makes TensorFlow trace every layer's call for Keras reloading, which takes
    most of a minute for a transformer and is useless to a model server.
    """

    def __init__(self, model: tf_keras.Model, tokenizer: TokenizerLayer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model_variables = list(model.variables)


def save_serving_model(
    model: tf_keras.Model,
    tokenizer: TokenizerLayer,
    input_names: list[str],
    export_dir: Path,
) -> None:
    """A SavedModel with ``serving_default`` (the pipeline) and ``tokenize`` signatures."""
    module = ServingModule(model, tokenizer)
    pair = "text_pair" in input_names

    def serve(*texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(model(dict(zip(input_names, texts, strict=True)), training=False))

    def tokenize(*texts: tf.Tensor) -> dict[str, tf.Tensor]:
        encoded = tokenizer(texts[0], text_pair=texts[1]) if pair else tokenizer(texts[0])
        return dict(encoded)

    signatures = {
        "serving_default": tf.function(serve, input_signature=string_specs(input_names)),
        "tokenize": tf.function(tokenize, input_signature=string_specs(input_names)),
    }
    tf.saved_model.save(module, str(export_dir), signatures=signatures)


def warmup_inputs(
    input_names: list[str], texts: Sequence[str], text_pairs: Sequence[str] | None
) -> dict[str, list[str]]:
    texts = [str(text) for text in texts]
    if not texts:
        raise ExportError("warmup_texts must not be empty: they drive the self-check")
    inputs = {"text": texts}
    if "text_pair" in input_names:
        pairs = [str(text) for text in (text_pairs or texts)]
        if len(pairs) != len(texts):
            raise ExportError("warmup_text_pairs must have one entry per warmup text")
        inputs["text_pair"] = pairs
    return inputs


def write_warmup_requests(export_dir: Path, model_name: str, inputs: dict[str, list[str]]) -> None:
    """``assets.extra/tf_serving_warmup_requests``: the batch, then its first row alone."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = export_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for rows in (slice(None), slice(0, 1)):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
            )
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values[rows], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def pipeline_metadata(
    model: tf_keras.Model,
    tokenizer: TokenizerLayer,
    input_names: list[str],
    target: VersionPath,
) -> dict[str, Any]:
    import tfpipe  # at call time: tfpipe/__init__ imports this module

    labels = [layer.labels for layer in model.submodules if isinstance(layer, LabelLookup)]
    return {
        "task": pipeline_task(model),
        "model_name": target.name,
        "version": target.version,
        "inputs": input_names,
        "outputs": sorted(model.output),
        "labels": list(labels[0]) if labels else None,
        "max_length": tokenizer.max_length,
        "tfpipe_version": tfpipe.__version__,
        "tensorflow_version": tf.__version__,
        "minimum_tensorflow_version": MINIMUM_TENSORFLOW,
        "tf_keras_version": tf_keras.__version__,
        "transformers_version": transformers.__version__,
    }


def pipeline_task(model: tf_keras.Model) -> str | None:
    """The pipeline task a model was built for, from its name and heads."""
    task = model.name.replace("_", "-")
    if task in ("text-classification", "feature-extraction"):
        return task
    if task == "zero-shot-classification" or any(
        isinstance(layer, CandidateSimilarity | EntailmentProbabilities)
        for layer in model.submodules
    ):
        return "zero-shot-classification"
    return None


def write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def expected_outputs(
    model: tf_keras.Model, tokenizer: TokenizerLayer, inputs: dict[str, list[str]]
) -> dict[str, dict[str, np.ndarray]]:
    """What the in-memory model and tokenizer give for the warmup inputs."""
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    outputs = model(tensors, training=False)
    if "text_pair" in tensors:
        encoded = tokenizer(tensors["text"], text_pair=tensors["text_pair"])
    else:
        encoded = tokenizer(tensors["text"])
    return {
        "serving_default": {name: np.asarray(value) for name, value in outputs.items()},
        "tokenize": {name: np.asarray(value) for name, value in encoded.items()},
    }


def run_self_check(
    export_dir: Path, inputs: dict[str, list[str]], work_dir: Path
) -> dict[str, Any]:
    """Run ``_serve_check.py`` on ``export_dir`` in a fresh Python without tfpipe."""
    request_path = work_dir / "request.json"
    report_path = work_dir / "report.json"
    write_json(request_path, {"serving_default": inputs, "tokenize": inputs})
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


def served_models(base: Path) -> list[str]:
    """Model folders under ``base`` with at least one numbered SavedModel version."""
    return sorted(
        child.name
        for child in base.iterdir()
        if child.is_dir()
        and not child.name.startswith(".")
        and any(
            version.name.isdigit() and (version / "saved_model.pb").is_file()
            for version in child.iterdir()
        )
    )


def write_models_config(base: Path, serving_base_path: str | None) -> Path:
    """models.config listing every exported model in ``base``, for ``--model_config_file``."""
    entries = []
    for name in served_models(base):
        base_path = (
            str(base / name)
            if serving_base_path is None
            else f"{serving_base_path.rstrip('/')}/{name}"
        )
        entries.append(
            "  config {\n"
            f"    name: {json.dumps(name)}\n"
            f"    base_path: {json.dumps(base_path)}\n"
            '    model_platform: "tensorflow"\n'
            "  }\n"
        )
    path = base / MODELS_CONFIG_FILE
    path.write_text("model_config_list {\n" + "".join(entries) + "}\n", encoding="utf-8")
    return path


def write_batching_parameters(base: Path) -> Path:
    """``base``'s batching_parameters.txt, written only if absent: once written it is the
    operator's to tune."""
    path = base / BATCHING_PARAMETERS_FILE
    if not path.exists():
        path.write_text(BATCHING_PARAMETERS, encoding="utf-8")
    return path
