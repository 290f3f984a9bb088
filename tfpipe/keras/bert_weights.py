"""A BERT checkpoint's model.safetensors (PyTorch names, as transformers saves it) into a
`ConfiguredBertBackbone` and a classifier head, weight by weight, every shape checked.

Safetensors only: nothing is unpickled. Names may carry the task model's `bert.` prefix
(`BertForSequenceClassification`) or none (`BertModel`); layer norms are `weight`/`bias` or
the older `gamma`/`beta`.
"""

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
    """The tensors of a checkpoint's model.safetensors, looked up by BERT name."""

    def __init__(self, folder: str) -> None:
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
        self.used: set[str] = set()

    def find(self, name: str) -> str | None:
        """The stored name of BERT weight ``name``: bare, or under ``bert.``; LayerNorm
        weight/bias also as gamma/beta."""
        candidates = [name, f"bert.{name}"]
        if ".LayerNorm." in name:
            old = name.replace(".weight", ".gamma").replace(".bias", ".beta")
            candidates += [old, f"bert.{old}"]
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
        if int(np.prod(array.shape)) != int(np.prod(shape)):
            raise ModelLoadError(
                f"{self.path}: {stored} has shape {array.shape}, the model needs {shape}"
            )
        variable.assign(transform(array, shape))
        self.used.add(stored)


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool) -> None:
    """Every backbone weight from ``weights`` (the pooler only ``with_pooler``)."""
    weights.assign(backbone.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    weights.assign(backbone.position_embedding.position_embeddings,
                   "embeddings.position_embeddings.weight")
    weights.assign(backbone.segment_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    load_layer_norm(backbone.embeddings_layer_norm, weights, "embeddings.LayerNorm")
    for index, block in enumerate(backbone.transformer_layers):
        load_block(block, weights, f"encoder.layer.{index}")
    if with_pooler:
        load_dense(backbone.pooled_dense, weights, "pooler.dense")


def load_block(block, weights: SafetensorsWeights, prefix: str) -> None:
    attention = block._self_attention_layer
    for part in ("query", "key", "value"):
        dense = getattr(attention, f"{part}_dense")
        load_dense(dense, weights, f"{prefix}.attention.self.{part}")
    load_dense(attention.output_dense, weights, f"{prefix}.attention.output.dense")
    load_layer_norm(
        block._self_attention_layer_norm, weights, f"{prefix}.attention.output.LayerNorm"
    )
    load_dense(block._feedforward_intermediate_dense, weights, f"{prefix}.intermediate.dense")
    load_dense(block._feedforward_output_dense, weights, f"{prefix}.output.dense")
    load_layer_norm(block._feedforward_layer_norm, weights, f"{prefix}.output.LayerNorm")


def load_dense(layer, weights: SafetensorsWeights, prefix: str) -> None:
    """A Dense or EinsumDense from a torch Linear: the kernel transposed, then reshaped."""
    weights.assign(layer.kernel, f"{prefix}.weight", transposed)
    weights.assign(layer.bias, f"{prefix}.bias")


def load_layer_norm(layer, weights: SafetensorsWeights, prefix: str) -> None:
    weights.assign(layer.gamma, f"{prefix}.weight")
    weights.assign(layer.beta, f"{prefix}.bias")
