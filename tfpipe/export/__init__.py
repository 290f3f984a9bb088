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

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tf_keras

from tfpipe.export.errors import ExportError
from tfpipe.export.saved_model import (
    DEFAULT_WARMUP_TEXTS,
    METADATA_FILE,
    find_tokenizer,
    pipeline_metadata,
    save_serving_model,
    string_input_names,
    warmup_inputs,
    write_json,
    write_warmup_requests,
)
from tfpipe.export.tf_serving import VersionPath, write_batching_parameters, write_models_config
from tfpipe.export.verification import check_ops, expected_outputs, run_self_check, verify_report

if TYPE_CHECKING:  # tfpipe does not import Keras 3 for tf-keras users
    import keras

__all__ = ["ExportError", "ExportedModel", "export"]


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


def export(
    model: tf_keras.Model | keras.Model,
    path: str | os.PathLike,
    *,
    warmup_texts: Sequence[str] = DEFAULT_WARMUP_TEXTS,
    warmup_text_pairs: Sequence[str] | None = None,
    overwrite: bool = False,
    serving_base_path: str | None = "/models",
    atol: float = 1e-4,
) -> ExportedModel:
    """Write ``model`` as SavedModel version ``path`` (``BASE/NAME/VERSION``) and verify it.

    ``model`` is a tf-keras pipeline (``tfpipe.pipeline``) or a Keras 3 one
    (``tfpipe.keras``): a functional model with string inputs and one TokenizerLayer.

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
