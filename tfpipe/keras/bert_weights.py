"""A BERT checkpoint's weights (weights.py) into a `ConfiguredBertBackbone` and a classifier
head. Names may carry the task model's `bert.` prefix (`BertForSequenceClassification`) or
none (`BertModel`); layer norms are `weight`/`bias` or the older `gamma`/`beta`.
"""

from __future__ import annotations

from tfpipe.keras.weights import SafetensorsWeights, transposed


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
