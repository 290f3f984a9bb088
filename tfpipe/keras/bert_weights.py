"""A BERT checkpoint's weights (weights.py) into a `ConfiguredBertBackbone` and a classifier
head. Names may carry the task model's `bert.` prefix (`BertForSequenceClassification`) or
none (`BertModel`); layer norms are `weight`/`bias` or the older `gamma`/`beta`. RoBERTa's
blocks have BERT's names, and every family's dense and layer-norm weights load as here.
"""

from __future__ import annotations

from tfpipe.keras.weights import SafetensorsWeights, transposed

# A checkpoint's names for the weights of one post-norm encoder block, by the part of
# keras-hub's TransformerEncoder they load (BERT's; other families name them otherwise).
BERT_BLOCK = {
    "query": "attention.self.query", "key": "attention.self.key",
    "value": "attention.self.value", "output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm", "intermediate": "intermediate.dense",
    "feedforward_output": "output.dense", "feedforward_norm": "output.LayerNorm",
}


def load_backbone(backbone, weights: SafetensorsWeights, with_pooler: bool) -> None:
    """Every backbone weight from ``weights`` (the pooler only ``with_pooler``)."""
    load_embeddings(backbone, weights)
    for index, block in enumerate(backbone.transformer_layers):
        load_block(block, weights, f"encoder.layer.{index}")
    if with_pooler:
        load_dense(backbone.pooled_dense, weights, "pooler.dense")


def load_embeddings(backbone, weights: SafetensorsWeights) -> None:
    """Word, position and token-type embeddings and their layer norm (BERT's and ALBERT's)."""
    weights.assign(backbone.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    weights.assign(backbone.position_embedding.position_embeddings,
                   "embeddings.position_embeddings.weight")
    weights.assign(backbone.segment_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    load_layer_norm(backbone.embeddings_layer_norm, weights, "embeddings.LayerNorm")


def load_block(
    block, weights: SafetensorsWeights, prefix: str, names: dict[str, str] = BERT_BLOCK
) -> None:
    """A keras-hub TransformerEncoder's weights, stored under ``prefix`` with ``names``."""
    attention = block._self_attention_layer
    for part in ("query", "key", "value", "output"):
        load_dense(getattr(attention, f"{part}_dense"), weights, f"{prefix}.{names[part]}")
    load_layer_norm(block._self_attention_layer_norm, weights,
                    f"{prefix}.{names['attention_norm']}")
    load_dense(block._feedforward_intermediate_dense, weights,
               f"{prefix}.{names['intermediate']}")
    load_dense(block._feedforward_output_dense, weights,
               f"{prefix}.{names['feedforward_output']}")
    load_layer_norm(block._feedforward_layer_norm, weights,
                    f"{prefix}.{names['feedforward_norm']}")


def load_dense(layer, weights: SafetensorsWeights, prefix: str) -> None:
    """A Dense or EinsumDense from a torch Linear: the kernel transposed, then reshaped."""
    weights.assign(layer.kernel, f"{prefix}.weight", transposed)
    weights.assign(layer.bias, f"{prefix}.bias")


def load_layer_norm(layer, weights: SafetensorsWeights, prefix: str) -> None:
    weights.assign(layer.gamma, f"{prefix}.weight")
    weights.assign(layer.beta, f"{prefix}.bias")
