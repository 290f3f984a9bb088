"""GPT-2 checkpoints as keras-hub `GPT2Backbone`s computing what transformers computes, for
sentence embeddings (feature-extraction): the decoder family of `tfpipe.keras`.

keras-hub's `GPT2Backbone` fixes the activation (`gelu_approximate`, GPT-2's `gelu_new`), the
layer-norm epsilon (1e-5) and one dropout rate; `ConfiguredGPT2Backbone` sets the activation
and epsilon config.json names, and a setting neither can honour is refused by name. Weights
come from model.safetensors (PyTorch names: `wte`, `h.N.attn.c_attn`, ..., under
`transformer.` in task models); GPT-2's Conv1D kernels are stored [in, out], as Keras's.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
import numpy as np

from tfpipe.keras.configured import ConfiguredBackbone, check_activation, check_settings
from tfpipe.keras.weights import SafetensorsWeights
from tfpipe.model_config import ModelLoadError

WEIGHT_PREFIX = "transformer"
# Settings whose every value but these changes what transformers computes.
FIXED_SETTINGS = {
    "scale_attn_weights": (True,),
    "scale_attn_by_inverse_layer_idx": (False,),
    "add_cross_attention": (False,),
}
REQUIRED_SETTINGS = ("vocab_size", "n_embd", "n_layer", "n_head", "n_positions")
DROPOUT_SETTINGS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")


def backbone_arguments(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`ConfiguredGPT2Backbone` arguments for a GPT-2 config.json, or a ModelLoadError naming
    the setting it cannot honour."""
    check_settings(config, source, REQUIRED_SETTINGS, FIXED_SETTINGS, "GPT2Backbone")
    activation = config.get("activation_function", "gelu_new")
    check_activation(activation, "activation_function", source)
    rates = {key: config.get(key, 0.1) for key in DROPOUT_SETTINGS}
    if len(set(rates.values())) != 1:
        named = ", ".join(f"{key}={value}" for key, value in rates.items())
        raise ModelLoadError(
            f"{source}: {named} differ; keras-hub's GPT2Backbone has one dropout rate"
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["n_layer"],
        "num_heads": config["n_head"],
        "hidden_dim": config["n_embd"],
        "intermediate_dim": config.get("n_inner") or 4 * config["n_embd"],
        "max_sequence_length": config["n_positions"],
        "dropout": float(rates["resid_pdrop"]),
        "hidden_act": activation,
        "layer_norm_eps": float(config.get("layer_norm_epsilon", 1e-5)),
    }


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class ConfiguredGPT2Backbone(ConfiguredBackbone, keras_hub.models.GPT2Backbone):
    """keras-hub's `GPT2Backbone` with the checkpoint's activation and layer-norm epsilon."""

    def __init__(self, *, hidden_act: str = "gelu_new", layer_norm_eps: float = 1e-5, **kwargs):
        super().__init__(hidden_act=hidden_act, layer_norm_eps=layer_norm_eps, **kwargs)

    def outer_layer_norms(self) -> list:
        return [self.layer_norm]


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool = False) -> None:
    """Every backbone weight from ``weights`` (GPT-2 has no pooler)."""
    weights.assign(backbone.token_embedding.embeddings, "wte.weight")
    weights.assign(backbone.position_embedding.position_embeddings, "wpe.weight")
    for index, block in enumerate(backbone.transformer_layers):
        load_block(block, weights, f"h.{index}")
    load_layer_norm(backbone.layer_norm, weights, "ln_f")


def load_block(block, weights: SafetensorsWeights, prefix: str) -> None:
    attention = block._self_attention_layer
    parts = (attention.query_dense, attention.key_dense, attention.value_dense)
    for index, dense in enumerate(parts):
        weights.assign(dense.kernel, f"{prefix}.attn.c_attn.weight", third(index, axis=1))
        weights.assign(dense.bias, f"{prefix}.attn.c_attn.bias", third(index, axis=0))
    load_conv1d(attention.output_dense, weights, f"{prefix}.attn.c_proj")
    load_layer_norm(block._self_attention_layer_norm, weights, f"{prefix}.ln_1")
    load_conv1d(block._feedforward_intermediate_dense, weights, f"{prefix}.mlp.c_fc")
    load_conv1d(block._feedforward_output_dense, weights, f"{prefix}.mlp.c_proj")
    load_layer_norm(block._feedforward_layer_norm, weights, f"{prefix}.ln_2")


def third(index: int, axis: int):
    """The query (0), key (1) or value (2) third of c_attn's fused [in, 3 * hidden] weight."""

    def transform(array: np.ndarray, shape: tuple) -> np.ndarray:
        return np.reshape(np.split(array, 3, axis=axis)[index], shape)

    return transform


def load_conv1d(layer, weights: SafetensorsWeights, prefix: str) -> None:
    weights.assign(layer.kernel, f"{prefix}.weight")
    weights.assign(layer.bias, f"{prefix}.bias")


def load_layer_norm(layer, weights: SafetensorsWeights, prefix: str) -> None:
    weights.assign(layer.gamma, f"{prefix}.weight")
    weights.assign(layer.beta, f"{prefix}.bias")
