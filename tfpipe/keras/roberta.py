"""RoBERTa and XLM-RoBERTa checkpoints as a keras-hub backbone computing what transformers
computes.

keras-hub's `RobertaBackbone` numbers positions 0, 1, ... from its first token and drops the
token-type embedding; transformers numbers a token's position `padding_idx` + its count of
non-padding tokens so far (a padding token, even one written in the text, sits at
`padding_idx`, and left padding shifts nothing) and adds type 0's embedding. So
`HFRobertaBackbone` is keras-hub's `Backbone` built from keras-hub's `TransformerEncoder`
blocks (post-norm, as BERT's), with transformers' embeddings: word + position (those ids) +
token type, then the layer norm. Weights come from model.safetensors under BERT's names
(bert_weights.py), with `roberta.` in task models.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
import tensorflow as tf

from tfpipe.keras import bert
from tfpipe.keras.bert_weights import load_block, load_layer_norm
from tfpipe.keras.configured import ACTIVATIONS
from tfpipe.keras.weights import SafetensorsWeights

WEIGHT_PREFIX = "roberta"
MODEL_TYPES = ("roberta", "xlm-roberta")


def backbone_arguments(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`HFRobertaBackbone` arguments for a RoBERTa config.json, or a ModelLoadError naming
    the setting it cannot honour."""
    return {
        **bert.encoder_arguments(config, source, "TransformerEncoder", 1e-5),
        "max_position_embeddings": config["max_position_embeddings"],
        "padding_idx": config.get("pad_token_id", 1),
        "num_segments": config.get("type_vocab_size", 1),
    }


def token_limit(config: dict[str, Any]) -> int:
    """Tokens per text the position embeddings allow: those after `padding_idx`."""
    return config["max_position_embeddings"] - config.get("pad_token_id", 1) - 1


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class RobertaPositionIds(keras.layers.Layer):
    """Token ids → transformers' RoBERTa position ids: `padding_idx` + the count of
    non-padding tokens up to each one, `padding_idx` for padding tokens."""

    def __init__(self, padding_idx: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding_idx = int(padding_idx)

    def call(self, token_ids):
        real = tf.cast(tf.not_equal(token_ids, self.padding_idx), token_ids.dtype)
        return tf.cumsum(real, axis=1) * real + self.padding_idx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding_idx": self.padding_idx}


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class HFRobertaBackbone(keras_hub.models.Backbone):
    """RoBERTa as transformers computes it, from keras-hub's encoder blocks."""

    def __init__(
        self, vocabulary_size: int, num_layers: int, num_heads: int, hidden_dim: int,
        intermediate_dim: int, max_position_embeddings: int, padding_idx: int = 1,
        num_segments: int = 1, dropout: float = 0.1, hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-5, dtype=None, **kwargs: Any,
    ) -> None:
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, dtype=dtype, name="token_embedding")
        self.position_embedding = keras.layers.Embedding(
            max_position_embeddings, hidden_dim, dtype=dtype, name="position_embedding")
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, dtype=dtype, name="segment_embedding")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=dtype, name="embeddings_layer_norm")
        self.transformer_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout,
                activation=ACTIVATIONS[hidden_act], layer_norm_epsilon=layer_norm_eps,
                dtype=dtype, name=f"transformer_layer_{index}")
            for index in range(num_layers)
        ]
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        positions = RobertaPositionIds(padding_idx, dtype=dtype, name="position_ids")(token_ids)
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        x = self.embeddings_layer_norm(x + self.segment_embedding(segment_ids))
        x = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")(x)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs=x, dtype=dtype, **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_position_embeddings = max_position_embeddings
        self.padding_idx = padding_idx
        self.num_segments = num_segments
        self.dropout = dropout
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps

    def get_config(self) -> dict[str, Any]:
        names = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                 "max_position_embeddings", "padding_idx", "num_segments", "dropout",
                 "hidden_act", "layer_norm_eps")
        return {**super().get_config(), **{name: getattr(self, name) for name in names}}


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool = False) -> None:
    """Every backbone weight from ``weights`` (the sequence classifier's head has its own
    dense layer, not a pooler)."""
    weights.assign(backbone.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    weights.assign(backbone.position_embedding.embeddings,
                   "embeddings.position_embeddings.weight")
    weights.assign(backbone.segment_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    load_layer_norm(backbone.embeddings_layer_norm, weights, "embeddings.LayerNorm")
    for index, block in enumerate(backbone.transformer_layers):
        load_block(block, weights, f"encoder.layer.{index}")
