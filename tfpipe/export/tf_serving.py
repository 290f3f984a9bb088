"""The TF Serving layout of an export base folder: ``NAME/VERSION`` folders, the
models.config listing every model, and the batching parameters written beside it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tfpipe.export.errors import ExportError

MODELS_CONFIG_FILE = "models.config"
BATCHING_PARAMETERS_FILE = "batching_parameters.txt"
# A starting point for --enable_batching on CPU, from bench/serving.py's batch-size sweep of
# the MiniLM export (docs/benchmarks.md, "Served end to end"): the default export, which runs
# the model on length-sorted chunks, reached 87-89% of its best rate (at 128) with batches of 32
# while a request waits for at most 31 others. A 1 ms timeout is about a tenth of a batch-1
# request.
BATCHING_PARAMETERS = """\
# TensorFlow Serving batching for the models in this folder (written once by tfpipe export;
# later exports keep your edits). Use it with:
#   tensorflow_model_server --enable_batching --batching_parameters_file=THIS_FILE ...
# max_batch_size: see the batch-size sweep in tfpipe's docs/benchmarks.md (bench/serving.py);
#   batching pays on CPU as the model runs on length-sorted chunks (unless exported with
#   max_chunk_tokens=None). num_batch_threads: the server's cores.
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


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
