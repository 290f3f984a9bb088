"""What keras-hub's backbones fix and a checkpoint may set otherwise: the feed-forward
activation and the layer-norm epsilon. `ConfiguredBackbone` sets both, as config.json names
them, on a keras-hub backbone once it is built, and keeps them in its config."""

from __future__ import annotations

from typing import Any

import keras

from tfpipe.model_config import ModelLoadError

# transformers' ACT2FN names with a Keras equivalent of the same formula.
ACTIVATIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_new": lambda x: keras.activations.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
}


def check_settings(
    config: dict[str, Any], source: str, required: tuple[str, ...],
    fixed: dict[str, tuple], backbone: str,
) -> None:
    """Refuse by name a config missing a ``required`` size or setting one of ``fixed`` to a
    value the keras-hub ``backbone`` cannot compute."""
    missing = [key for key in required if not isinstance(config.get(key), int)]
    if missing:
        raise ModelLoadError(f"{source}: config.json lacks {', '.join(missing)}")
    for key, allowed in fixed.items():
        if key in config and config[key] not in allowed:
            raise ModelLoadError(
                f"{source}: {key}={config[key]!r} is not supported by keras-hub's {backbone} "
                f"(tfpipe.keras supports {allowed[0]!r}); use tfpipe.pipeline (tf-keras)"
            )


def check_activation(activation: str, key: str, source: str) -> None:
    if activation not in ACTIVATIONS:
        raise ModelLoadError(
            f"{source}: {key}={activation!r} is not supported by tfpipe.keras "
            f"(supported: {', '.join(ACTIVATIONS)}); use tfpipe.pipeline (tf-keras)"
        )


class ConfiguredBackbone:
    """Mixin before a keras-hub backbone class: `hidden_act` and `layer_norm_eps` arguments."""

    def __init__(self, *, hidden_act: str, layer_norm_eps: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        activation = ACTIVATIONS[hidden_act]
        for norm in self.outer_layer_norms():
            norm.epsilon = layer_norm_eps
        for block in self.blocks():
            # Built while the functional graph was traced; their call reads these attributes.
            block.activation = activation
            block._feedforward_intermediate_dense.activation = activation
            block._self_attention_layer_norm.epsilon = layer_norm_eps
            block._feedforward_layer_norm.epsilon = layer_norm_eps

    def outer_layer_norms(self) -> list:
        """The backbone's layer norms outside its transformer blocks."""
        raise NotImplementedError

    def blocks(self) -> list:
        """The backbone's transformer blocks (each shared block once)."""
        return list(self.transformer_layers)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_act": self.hidden_act,
            "layer_norm_eps": self.layer_norm_eps,
        }
