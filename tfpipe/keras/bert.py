"""BERT-family checkpoints as keras-hub `BertBackbone`s computing what transformers computes.

keras-hub's `BertBackbone` fixes settings a checkpoint's config.json may set otherwise: the
feed-forward activation (`gelu_approximate`, where BERT's `"hidden_act": "gelu"` is the exact
erf GELU: 2.4e-3 apart on MiniLM's hidden states), the layer-norm epsilon (1e-12) and one
dropout rate. `ConfiguredBertBackbone` builds the backbone, then sets the activation and
epsilon the config names; every other setting that changes the computation is checked, and a
value neither keras-hub nor this class can honour is refused by name.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

from tfpipe.keras.configured import ConfiguredBackbone, check_activation, check_settings
from tfpipe.model_config import ModelLoadError

WEIGHT_PREFIX = "bert"

# Settings whose every value but these changes what transformers computes.
FIXED_SETTINGS = {
    "position_embedding_type": ("absolute",),
    "is_decoder": (False,),
    "add_cross_attention": (False,),
    "pruned_heads": ({},),
}
REQUIRED_SETTINGS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "max_position_embeddings",
)


def backbone_arguments(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`ConfiguredBertBackbone` arguments for a BERT config.json, or a ModelLoadError naming
    the setting it cannot honour."""
    if config.get("model_type") != "bert":
        raise ModelLoadError(
            f"{source}: model_type {config.get('model_type')!r}; tfpipe.keras builds the BERT "
            "family (model_type 'bert')"
        )
    return {
        **encoder_arguments(config, source, "BertBackbone", 1e-12),
        "max_sequence_length": config["max_position_embeddings"],
        "num_segments": config.get("type_vocab_size", 2),
    }


def encoder_arguments(
    config: dict[str, Any], source: str, backbone: str, layer_norm_eps: float
) -> dict[str, Any]:
    """The sizes and settings of a BERT-shaped config.json (BERT's, RoBERTa's), checked
    (``layer_norm_eps`` is the family's default)."""
    check_settings(config, source, REQUIRED_SETTINGS, FIXED_SETTINGS, backbone)
    activation = config.get("hidden_act", "gelu")
    check_activation(activation, "hidden_act", source)
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "dropout": dropout_rate(config, source),
        "hidden_act": activation,
        "layer_norm_eps": float(config.get("layer_norm_eps", layer_norm_eps)),
    }


def dropout_rate(
    config: dict[str, Any], source: str, default: float = 0.1, backbone: str = "BertBackbone"
) -> float:
    """keras-hub's one rate, for both of BERT's (they act only in training); `default` is
    the family's transformers default for both."""
    hidden = config.get("hidden_dropout_prob", default)
    attention = config.get("attention_probs_dropout_prob", default)
    if hidden != attention:
        raise ModelLoadError(
            f"{source}: hidden_dropout_prob={hidden} differs from attention_probs_dropout_prob="
            f"{attention}; keras-hub's {backbone} has one dropout rate for both"
        )
    return float(hidden)


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class ConfiguredBertBackbone(ConfiguredBackbone, keras_hub.models.BertBackbone):
    """keras-hub's `BertBackbone` with the checkpoint's activation and layer-norm epsilon."""

    def __init__(self, *, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(hidden_act=hidden_act, layer_norm_eps=layer_norm_eps, **kwargs)

    def outer_layer_norms(self) -> list:
        return [self.embeddings_layer_norm]
