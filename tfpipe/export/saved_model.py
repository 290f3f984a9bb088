"""The SavedModel of a pipeline model: its signatures, warmup requests and metadata."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
import tf_keras
import transformers

from tfpipe.export.errors import ExportError
from tfpipe.export.runtime_compat import MINIMUM_TENSORFLOW
from tfpipe.export.tf_serving import VersionPath
from tfpipe.heads import CandidateSimilarity, EntailmentProbabilities, LabelLookup
from tfpipe.tokenization.tokenizer_core import TokenizerCore

METADATA_FILE = "tfpipe.json"
# Tasks whose pipeline model is named after them (``token_classification``).
NAMED_TASKS = (
    "text-classification",
    "feature-extraction",
    "token-classification",
    "question-answering",
    "fill-mask",
)
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The string inputs an export can take, in the order the tokenizer reads them: a text, a
# pair of texts, or a question and its context (HF tokenizes the question first).
INPUT_LAYOUTS = (("text",), ("text", "text_pair"), ("question", "context"))
DEFAULT_WARMUP_TEXTS = (
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "",
)


def string_input_names(model) -> list[str]:
    """The dict inputs of ``model`` (a tf-keras or Keras 3 functional model), checked to be
    one of INPUT_LAYOUTS' string vectors, in the layout's order."""
    if not isinstance(model.input, dict) or not isinstance(model.output, dict):
        raise ExportError("export needs a functional model with dict inputs and dict outputs")
    names = set(model.input)
    layout = next((layout for layout in INPUT_LAYOUTS if set(layout) == names), None)
    if layout is None:
        expected = " or ".join(repr(list(layout)) for layout in INPUT_LAYOUTS)
        raise ExportError(f"export needs inputs {expected}, the model has {sorted(names)}")
    for name, tensor in model.input.items():
        # tf-keras tensors have a TensorShape and a DType, Keras 3's a tuple and a name.
        if tf.as_dtype(tensor.dtype) != tf.string or tf.TensorShape(tensor.shape).rank != 1:
            raise ExportError(f"model input {name!r} must be tf.string of shape [batch]")
    return list(layout)


def model_layers(model) -> list:
    """Every layer and module inside ``model``: tf-keras models list them as ``submodules``,
    Keras 3 models (not ``tf.Module``s) by walking their layers."""
    if hasattr(model, "submodules"):
        return list(model.submodules)
    return list(model._flatten_layers(include_self=False))


def find_tokenizer(model) -> TokenizerCore:
    """The model's one tokenizer layer, tf-keras's or Keras 3's (both are TokenizerCores)."""
    tokenizers = [layer for layer in model_layers(model) if isinstance(layer, TokenizerCore)]
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

    def __init__(self, model, tokenizer: TokenizerCore) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model_variables = [tf_variable(variable) for variable in model.variables]


def tf_variable(variable) -> tf.Variable:
    """The tf.Variable to save: itself (tf-keras), or the one a Keras 3 variable wraps
    (its ``value``), which is what the traced signatures capture."""
    value = getattr(variable, "value", None)
    return value if isinstance(value, tf.Variable) else variable


def save_serving_model(
    model,
    tokenizer: TokenizerCore,
    input_names: list[str],
    export_dir: Path,
) -> None:
    """A SavedModel with ``serving_default`` (the pipeline) and ``tokenize`` signatures."""
    module = ServingModule(model, tokenizer)

    def serve(*texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(model(dict(zip(input_names, texts, strict=True)), training=False))

    def tokenize(*texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(tokenize_inputs(tokenizer, texts))

    specs = string_specs(input_names)
    signatures = {
        "serving_default": tf.function(serve, input_signature=specs, autograph=False),
        "tokenize": tf.function(tokenize, input_signature=specs, autograph=False),
    }
    tf.saved_model.save(module, str(export_dir), signatures=signatures)


def tokenize_inputs(tokenizer: TokenizerCore, texts: Sequence[tf.Tensor]) -> dict:
    """The tokenizer on an export's inputs in layout order: a text, or the two of a pair."""
    if len(texts) == 2:
        return tokenizer(texts[0], text_pair=texts[1])
    return tokenizer(texts[0])


def warmup_inputs(
    input_names: list[str], texts: Sequence[str], text_pairs: Sequence[str] | None
) -> dict[str, list[str]]:
    """The warmup request: ``texts`` for the first input, ``text_pairs`` (default: ``texts``)
    for the second of a two-input layout."""
    texts = [str(text) for text in texts]
    if not texts:
        raise ExportError("warmup_texts must not be empty: they drive the self-check")
    inputs = {input_names[0]: texts}
    if len(input_names) == 2:
        pairs = [str(text) for text in (text_pairs or texts)]
        if len(pairs) != len(texts):
            raise ExportError("warmup_text_pairs must have one entry per warmup text")
        inputs[input_names[1]] = pairs
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
    model,
    tokenizer: TokenizerCore,
    input_names: list[str],
    target: VersionPath,
) -> dict[str, Any]:
    import tfpipe  # at call time: tfpipe/__init__ imports this module

    labels = [layer.labels for layer in model_layers(model) if is_label_lookup(layer)]
    metadata = {
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
    if not isinstance(model, tf_keras.Model):
        import keras  # Keras 3, already imported by TensorFlow

        metadata["keras_version"] = keras.__version__
    return metadata


def is_label_lookup(layer) -> bool:
    """A tf-keras LabelLookup head, or tfpipe.keras's (loaded only if a model uses it)."""
    keras_heads = sys.modules.get("tfpipe.keras.heads")
    return isinstance(layer, LabelLookup) or (
        keras_heads is not None and isinstance(layer, keras_heads.LabelLookup)
    )


def pipeline_task(model) -> str | None:
    """The pipeline task a model was built for, from its name and heads."""
    task = model.name.replace("_", "-")
    if task in NAMED_TASKS:
        return task
    if task == "zero-shot-classification" or any(
        isinstance(layer, CandidateSimilarity | EntailmentProbabilities)
        for layer in model_layers(model)
    ):
        return "zero-shot-classification"
    return None


def write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
