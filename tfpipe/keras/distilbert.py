"""DistilBERT checkpoints as keras-hub `DistilBertBackbone`s computing what transformers
computes.

keras-hub's `DistilBertBackbone` fixes the feed-forward activation (`gelu`) and one dropout
rate; `ConfiguredDistilBertBackbone` builds the `activation` config.json names, and a
setting neither can honour is refused by name. Weights come from model.safetensors
(PyTorch names: `embeddings.*`, `transformer.layer.N.attention.q_lin`, ..., under
`distilbert.` in task models).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

from tfpipe.keras.bert_weights import load_block, load_layer_norm
from tfpipe.keras.configured import ConfiguredBackbone, check_activation, check_settings
from tfpipe.keras.weights import SafetensorsWeights
from tfpipe.model_config import ModelLoadError

WEIGHT_PREFIX = "distilbert"
# transformers' DistilBERT has a fixed layer-norm epsilon.
LAYER_NORM_EPS = 1e-12
# Settings whose every value but these changes what transformers computes.
FIXED_SETTINGS = {"pruned_heads": ({},)}
BLOCK = {
    "query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
    "output": "attention.out_lin", "attention_norm": "sa_layer_norm",
    "intermediate": "ffn.lin1", "feedforward_output": "ffn.lin2",
    "feedforward_norm": "output_layer_norm",
}
REQUIRED_SETTINGS = (
    "vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings",
)


def backbone_arguments(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`ConfiguredDistilBertBackbone` arguments for a DistilBERT config.json, or a
    ModelLoadError naming the setting it cannot honour."""
    check_settings(config, source, REQUIRED_SETTINGS, FIXED_SETTINGS, "DistilBertBackbone")
    activation = config.get("activation", "gelu")
    check_activation(activation, "activation", source)
    dropout, attention = config.get("dropout", 0.1), config.get("attention_dropout", 0.1)
    if dropout != attention:
        raise ModelLoadError(
            f"{source}: dropout={dropout} differs from attention_dropout={attention}; "
            "keras-hub's DistilBertBackbone has one dropout rate for both"
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["n_layers"],
        "num_heads": config["n_heads"],
        "hidden_dim": config["dim"],
        "intermediate_dim": config["hidden_dim"],
        "max_sequence_length": config["max_position_embeddings"],
        "dropout": float(dropout),
        "hidden_act": activation,
        "layer_norm_eps": LAYER_NORM_EPS,
    }


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class ConfiguredDistilBertBackbone(ConfiguredBackbone, keras_hub.models.DistilBertBackbone):
    """keras-hub's `DistilBertBackbone` with the checkpoint's activation."""

    def __init__(
        self, *, hidden_act: str = "gelu", layer_norm_eps: float = LAYER_NORM_EPS, **kwargs
    ):
        super().__init__(hidden_act=hidden_act, layer_norm_eps=layer_norm_eps, **kwargs)

    def outer_layer_norms(self) -> list:
        return [self.embeddings_layer_norm]


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool = False) -> None:
    """Every backbone weight from ``weights`` (DistilBERT has no pooler)."""
    embeddings = backbone.embeddings
    weights.assign(embeddings.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    weights.assign(embeddings.position_embedding.position_embeddings,
                   "embeddings.position_embeddings.weight")
    load_layer_norm(backbone.embeddings_layer_norm, weights, "embeddings.LayerNorm")
    for index, block in enumerate(backbone.transformer_layers):
        load_block(block, weights, f"transformer.layer.{index}", BLOCK)
