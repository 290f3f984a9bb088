"""ALBERT checkpoints as keras-hub `AlbertBackbone`s computing what transformers computes.

keras-hub's `AlbertBackbone` fixes the activation (`gelu_approximate`, ALBERT's usual
`gelu_new`), the layer-norm epsilon (1e-12) and one dropout rate;
`ConfiguredAlbertBackbone` sets the activation and epsilon config.json names, and a setting
neither can honour is refused by name. Its blocks are shared: `num_hidden_groups` groups of
`inner_group_num` blocks, each group called for its share of `num_hidden_layers`, as
transformers calls them. Weights come from model.safetensors (PyTorch names under
`albert.` in task models).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

from tfpipe.keras.bert import dropout_rate
from tfpipe.keras.bert_weights import load_block, load_dense, load_embeddings
from tfpipe.keras.configured import ConfiguredBackbone, check_activation, check_settings
from tfpipe.keras.weights import SafetensorsWeights
from tfpipe.model_config import ModelLoadError

WEIGHT_PREFIX = "albert"
# Settings whose every value but these changes what transformers computes.
FIXED_SETTINGS = {"position_embedding_type": ("absolute",), "pruned_heads": ({},)}
BLOCK = {
    "query": "attention.query", "key": "attention.key", "value": "attention.value",
    "output": "attention.dense", "attention_norm": "attention.LayerNorm",
    "intermediate": "ffn", "feedforward_output": "ffn_output",
    "feedforward_norm": "full_layer_layer_norm",
}
REQUIRED_SETTINGS = (
    "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "max_position_embeddings",
)


def backbone_arguments(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`ConfiguredAlbertBackbone` arguments for an ALBERT config.json, or a ModelLoadError
    naming the setting it cannot honour."""
    check_settings(config, source, REQUIRED_SETTINGS, FIXED_SETTINGS, "AlbertBackbone")
    activation = config.get("hidden_act", "gelu_new")
    check_activation(activation, "hidden_act", source)
    groups = config.get("num_hidden_groups", 1)
    if config["num_hidden_layers"] % groups:
        raise ModelLoadError(
            f"{source}: num_hidden_layers={config['num_hidden_layers']} is not a multiple of "
            f"num_hidden_groups={groups}; keras-hub's AlbertBackbone needs equal groups"
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "embedding_dim": config["embedding_size"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "num_groups": groups,
        "num_inner_repetitions": config.get("inner_group_num", 1),
        "max_sequence_length": config["max_position_embeddings"],
        "num_segments": config.get("type_vocab_size", 2),
        "dropout": dropout_rate(config, source, 0.0, "AlbertBackbone"),
        "hidden_act": activation,
        "layer_norm_eps": float(config.get("layer_norm_eps", 1e-12)),
    }


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class ConfiguredAlbertBackbone(ConfiguredBackbone, keras_hub.models.AlbertBackbone):
    """keras-hub's `AlbertBackbone` with the checkpoint's activation and layer-norm epsilon."""

    def __init__(self, *, hidden_act: str = "gelu_new", layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(hidden_act=hidden_act, layer_norm_eps=layer_norm_eps, **kwargs)

    def outer_layer_norms(self) -> list:
        return [self.embeddings_layer_norm]

    def blocks(self) -> list:
        return [block for group in self.transformer_layers for block in group]


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool) -> None:
    """Every backbone weight from ``weights`` (the pooler only ``with_pooler``)."""
    load_embeddings(backbone, weights)
    load_dense(backbone.embeddings_projection, weights, "encoder.embedding_hidden_mapping_in")
    for group_index, group in enumerate(backbone.transformer_layers):
        for inner_index, block in enumerate(group):
            prefix = f"encoder.albert_layer_groups.{group_index}.albert_layers.{inner_index}"
            load_block(block, weights, prefix, BLOCK)
    if with_pooler:
        load_dense(backbone.pooled_dense, weights, "pooler")
