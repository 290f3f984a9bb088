"""tfpipe's self-check for SavedModels that Keras 3 writes itself (`model.export(path)`,
`keras.export.ExportArchive`): the same op audit and fresh TensorFlow-only reload with the
TF1 `serve` loader that `tfpipe.export` runs before publishing a version."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfpipe.export.errors import ExportError
from tfpipe.export.saved_model import DEFAULT_WARMUP_TEXTS, string_input_names
from tfpipe.export.verification import check_ops, run_self_check, verify_report


def verify_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    texts: Sequence[str] = DEFAULT_WARMUP_TEXTS,
    text_pairs: Sequence[str] | None = None,
    atol: float = 1e-4,
) -> dict:
    """Check the SavedModel ``model.export(export_dir)`` wrote: core ops only, and its
    ``serving_default`` signature, loaded as TF Serving loads it in a process that imports
    only TensorFlow, equal to ``model`` on ``texts``. Returns the child's report; raises
    ExportError naming what fails."""
    export_dir = Path(export_dir)
    names = string_input_names(model)
    inputs = {names[0]: [str(text) for text in texts]}
    if len(names) == 2:
        inputs[names[1]] = [str(text) for text in (text_pairs or texts)]
    check_ops(export_dir)
    check_signature_inputs(export_dir, sorted(inputs))
    with tempfile.TemporaryDirectory(prefix="tfpipe-keras-check-") as work_dir:
        report = run_self_check(export_dir, inputs, Path(work_dir), ("serving_default",))
    outputs = model({name: tf.constant(values) for name, values in inputs.items()})
    expected = {name: np.asarray(value) for name, value in as_dict(model, outputs).items()}
    verify_report(report, {"serving_default": expected}, atol)
    return report


def check_signature_inputs(export_dir: Path, names: list[str]) -> None:
    """The model's input names must be serving_default's: the check feeds them by name."""
    for graph in saved_model_meta_graphs(export_dir):
        signature = graph.signature_def.get("serving_default")
        if signature is None:
            raise ExportError(f"{export_dir} has no serving_default signature")
        if sorted(signature.inputs) != names:
            raise ExportError(
                f"serving_default takes inputs {sorted(signature.inputs)}, the model {names}: "
                "name the endpoint's TensorSpecs as the model's inputs"
            )


def saved_model_meta_graphs(export_dir: Path) -> list:
    saved_model = saved_model_pb2.SavedModel.FromString(
        (export_dir / "saved_model.pb").read_bytes()
    )
    return list(saved_model.meta_graphs)


def as_dict(model: keras.Model, outputs) -> dict:
    """A model's outputs by name: Keras 3 exports name a dict's outputs by its keys."""
    if isinstance(outputs, dict):
        return outputs
    raise ExportError(f"verify_saved_model needs a model with dict outputs, {model.name} has none")
