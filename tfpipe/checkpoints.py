"""Which weights file of a model checkpoint folder to load, and how.

Weights come from ``model.safetensors`` or ``tf_model.h5``; a pickled ``pytorch_model.bin``
is only read when the caller opts in with ``allow_pickle=True``, since unpickling runs
arbitrary code.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from tfpipe.model_config import ModelLoadError

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
TF_H5_FILES = ("tf_model.h5", "tf_model.h5.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _existing(folder: str, names: tuple[str, ...]) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in names)


def weight_loading_options(folder: str, *, allow_pickle: bool) -> dict[str, Any]:
    """``from_pretrained`` flags that pick a safe weights file, or a clear error.

    safetensors (PyTorch- or TF-format) wins, then TF H5, then pickled PyTorch weights when
    allowed.
    """
    if _existing(folder, SAFETENSORS_FILES):
        return {"use_safetensors": True}
    if _existing(folder, TF_H5_FILES):
        return {"use_safetensors": False}
    if _existing(folder, PICKLE_FILES):
        if not allow_pickle:
            raise ModelLoadError(
                f"{folder} has only pickled PyTorch weights (pytorch_model.bin); unpickling can "
                "run arbitrary code, so pass allow_pickle=True if you trust this checkpoint, or "
                "convert it to model.safetensors"
            )
        if importlib.util.find_spec("torch") is None:
            raise ModelLoadError(
                f"{folder} has only pytorch_model.bin, which needs torch to read; convert it to "
                "model.safetensors instead"
            )
        return {"from_pt": True, "use_safetensors": False}
    raise ModelLoadError(
        f"no model weights in {folder}: expected model.safetensors or tf_model.h5"
        " (or pytorch_model.bin with allow_pickle=True)"
    )
