"""A checkpoint's model.safetensors (PyTorch names, as transformers saves it), read weight by
weight into Keras variables, every shape checked. Safetensors only: nothing is unpickled."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from safetensors import safe_open

from tfpipe.model_config import ModelLoadError

WEIGHTS_FILE = "model.safetensors"
Transform = Callable[[np.ndarray, tuple], np.ndarray]


def reshaped(array: np.ndarray, shape: tuple) -> np.ndarray:
    return np.reshape(array, shape)


def transposed(array: np.ndarray, shape: tuple) -> np.ndarray:
    """A torch Linear's [out, in] weight as a Keras kernel of ``shape`` ([in, ...])."""
    return np.reshape(np.transpose(array), shape)


class SafetensorsWeights:
    """The tensors of a checkpoint's model.safetensors, looked up by base-model name (the
    task model's names carry ``prefix``: ``bert.``, ``transformer.``)."""

    def __init__(self, folder: str, prefix: str) -> None:
        self.prefix = prefix
        self.path = os.path.join(folder, WEIGHTS_FILE)
        if not os.path.isfile(self.path):
            raise ModelLoadError(
                f"{folder} has no {WEIGHTS_FILE}: tfpipe.keras reads safetensors weights only "
                "(convert tf_model.h5 or pytorch_model.bin with transformers' save_pretrained)"
            )
        self._file = safe_open(self.path, framework="np")
        self.names = set(self._file.keys())
        if any("/" in name for name in self.names):
            raise ModelLoadError(
                f"{self.path} holds TF-format names; tfpipe.keras reads PyTorch-format "
                "safetensors (save_pretrained from a PyTorch model)"
            )

    def find(self, name: str) -> str | None:
        """The stored name of weight ``name``: bare, or under the prefix; BERT's LayerNorm
        weight/bias also as the older gamma/beta."""
        candidates = [name, f"{self.prefix}.{name}"]
        if ".LayerNorm." in name:
            old = name.replace(".weight", ".gamma").replace(".bias", ".beta")
            candidates += [old, f"{self.prefix}.{old}"]
        return next((candidate for candidate in candidates if candidate in self.names), None)

    def has(self, name: str) -> bool:
        return self.find(name) is not None

    def assign(self, variable, name: str, transform: Transform = reshaped) -> None:
        """Set a Keras variable from weight ``name``, refusing a missing or misshapen one."""
        stored = self.find(name)
        if stored is None:
            raise ModelLoadError(f"{self.path} has no weight {name}")
        array = self._file.get_tensor(stored).astype(np.float32)
        shape = tuple(variable.shape)
        try:
            value = transform(array, shape)
        except ValueError:  # numpy cannot reshape it: another size
            value = None
        if value is None or tuple(value.shape) != shape:
            raise ModelLoadError(
                f"{self.path}: {stored} has shape {array.shape}, the model needs {shape}"
            )
        variable.assign(value)
