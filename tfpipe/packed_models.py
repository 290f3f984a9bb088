"""Models that run packed batches (tfpipe.packing), by transformers class: the only list of them.

A packed row holds several texts, so the model must take each token's position id and a mask
per packed row instead of one per text. transformers' TF models take position ids but build
their own per-text mask from a [rows, width] one, so the main layer's embeddings and
encoder are called here directly with the packed row's mask, then the class's head, exactly as
the class's own `call` chains them. Position ids are the model's own for the unpacked batch
(RoBERTa's count real tokens from its padding index), carried into the packed rows.

DistilBERT reshapes its mask to [rows, 1, 1, width] inside each attention layer, so its
blocks are chained here with the attention computed from the layer's own weights, as its
`call` computes it. Every class not listed here (PACKED_CLASSES) runs unpacked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf
import tf_keras
from transformers.tf_utils import stable_softmax

from tfpipe.packing import Layout, allowed_keys, attention_bias, first_tokens, run_packed, unpack

Head = Callable[[tf_keras.Model, tf.Tensor, bool], tf.Tensor]
Layer = tf_keras.layers.Layer
Features = dict[str, tf.Tensor]


class Family(NamedTuple):
    """How a family's main layer runs: its attribute on the model, the model's position ids
    for a [rows, width] batch of input ids, and the main layer on packed features."""

    main: str
    position_ids: Callable[[Layer, tf.Tensor], tf.Tensor]
    encode: Callable[[Layer, Features, bool], tf.Tensor]


class Packing(NamedTuple):
    """A class's family, its head, and whether the head reads each text's first token
    rather than every token."""

    family: Family
    head: Head
    first_token: bool


def columns(main: Layer, input_ids: tf.Tensor) -> tf.Tensor:
    """Position ids 0, 1, … per row: what BERT and ALBERT use when given none."""
    shape = tf.shape(input_ids)
    return tf.broadcast_to(tf.range(shape[1], dtype=input_ids.dtype)[None], shape)


def padding_offset_positions(main: Layer, input_ids: tf.Tensor) -> tf.Tensor:
    """RoBERTa's own: real tokens counted from the padding index + 1."""
    return main.embeddings.create_position_ids_from_input_ids(input_ids=input_ids)


def biased_encoder(**extra: object) -> Callable[[Layer, Features, bool], tf.Tensor]:
    """Embeddings, then the encoder with an additive mask bias (BERT's -10000), as BERT-like
    main layers chain them; ``extra``: arguments the family's encoder takes beside these."""

    def encode(main: Layer, packed: Features, training: bool) -> tf.Tensor:
        embedded = main.embeddings(
            input_ids=packed["input_ids"],
            position_ids=packed["position_ids"],
            token_type_ids=packed.get("token_type_ids"),
            training=training,
        )
        if hasattr(main, "embeddings_project"):
            # ELECTRA's embeddings narrower than its hidden size.
            embedded = main.embeddings_project(embedded, training=training)
        return main.encoder(
            hidden_states=embedded,
            attention_mask=attention_bias(packed, embedded.dtype),
            head_mask=[None] * main.config.num_hidden_layers,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
            training=training,
            **extra,
        ).last_hidden_state

    return encode


# BERT's, RoBERTa's and ELECTRA's encoders also take cross-attention and cache arguments.
bert_encoder = biased_encoder(
    encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=False
)


def distilbert_attention(attention: Layer, hidden: tf.Tensor, masked: tf.Tensor, training: bool):
    """transformers' TFMultiHeadSelfAttention on ``hidden``; ``masked``: what it subtracts
    from the scores of keys a query may not see, per packed row."""
    rows, heads = tf.shape(hidden)[0], attention.n_heads
    per_head = attention.dim // heads

    def split_heads(x: tf.Tensor) -> tf.Tensor:
        return tf.transpose(tf.reshape(x, (rows, -1, heads, per_head)), perm=(0, 2, 1, 3))

    query = split_heads(attention.q_lin(hidden)) * tf.math.rsqrt(float(per_head))
    key, value = split_heads(attention.k_lin(hidden)), split_heads(attention.v_lin(hidden))
    scores = tf.matmul(query, key, transpose_b=True) - masked
    weights = attention.dropout(stable_softmax(scores, axis=-1), training=training)
    context = tf.transpose(tf.matmul(weights, value), perm=(0, 2, 1, 3))
    return attention.out_lin(tf.reshape(context, (rows, -1, heads * per_head)))


def distilbert_encode(main: Layer, packed: Features, training: bool) -> tf.Tensor:
    """DistilBERT's embeddings and transformer blocks, each as its `call` chains them."""
    hidden = main.embeddings(
        input_ids=packed["input_ids"], position_ids=packed["position_ids"], training=training
    )
    masked = 1e30 * (1.0 - tf.cast(allowed_keys(packed), hidden.dtype))
    for block in main.transformer.layer:
        attended = distilbert_attention(block.attention, hidden, masked, training)
        hidden = block.sa_layer_norm(attended + hidden)
        hidden = block.output_layer_norm(block.ffn(hidden, training=training) + hidden)
    return hidden


BERT = Family("bert", columns, bert_encoder)
ROBERTA = Family("roberta", padding_offset_positions, bert_encoder)
ALBERT = Family("albert", columns, biased_encoder())
ELECTRA = Family("electra", columns, bert_encoder)
DISTILBERT = Family("distilbert", columns, distilbert_encode)


def bert_classification_head(model: tf_keras.Model, first: tf.Tensor, training: bool):
    pooled = model.bert.pooler(hidden_states=first[:, None, :])
    return model.classifier(inputs=model.dropout(inputs=pooled, training=training))


def first_token_classification_head(model: tf_keras.Model, first: tf.Tensor, training: bool):
    """RoBERTa's and ELECTRA's: a classifier that reads the first token of its input."""
    return model.classifier(first[:, None, :], training=training)


def albert_classification_head(model: tf_keras.Model, first: tf.Tensor, training: bool):
    pooled = model.albert.pooler(inputs=first)
    return model.classifier(inputs=model.dropout(inputs=pooled, training=training))


def distilbert_classification_head(model: tf_keras.Model, first: tf.Tensor, training: bool):
    pooled = model.pre_classifier(first)
    return model.classifier(model.dropout(pooled, training=training))


def token_classification_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    return model.classifier(inputs=model.dropout(inputs=hidden, training=training))


def question_answering_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    """[..., 2]: start and end logits, as TransformerLayer stacks them."""
    return model.qa_outputs(inputs=hidden)


def dropout_question_answering_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    """DistilBERT's: dropout before the start and end logits."""
    return model.qa_outputs(model.dropout(hidden, training=training))


def bert_masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    return model.mlm(sequence_output=hidden, training=training)


def roberta_masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    return model.lm_head(hidden)


def albert_masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    return model.predictions(hidden_states=hidden)


def distilbert_masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    transformed = model.vocab_layer_norm(model.act(model.vocab_transform(hidden)))
    return model.vocab_projector(transformed)


def electra_masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    predicted = model.generator_predictions(hidden, training=training)
    return model.generator_lm_head(predicted, training=training)


def no_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool) -> tf.Tensor:
    return hidden


def family_classes(
    prefix: str,
    family: Family,
    classification: Head,
    masked_lm: Head,
    question_answering: Head = question_answering_head,
) -> dict[str, Packing]:
    """The packing of a family's task classes, named ``prefix`` + the task's suffix."""
    return {
        f"{prefix}ForSequenceClassification": Packing(family, classification, True),
        f"{prefix}ForTokenClassification": Packing(family, token_classification_head, False),
        f"{prefix}ForQuestionAnswering": Packing(family, question_answering, False),
        f"{prefix}ForMaskedLM": Packing(family, masked_lm, False),
        f"{prefix}Model": Packing(family, no_head, False),
    }


PACKED_CLASSES: dict[str, Packing] = {
    **family_classes("TFBert", BERT, bert_classification_head, bert_masked_lm_head),
    **family_classes("TFRoberta", ROBERTA, first_token_classification_head, roberta_masked_lm_head),
    **family_classes(
        "TFXLMRoberta", ROBERTA, first_token_classification_head, roberta_masked_lm_head
    ),
    **family_classes(
        "TFCamembert", ROBERTA, first_token_classification_head, roberta_masked_lm_head
    ),
    **family_classes("TFAlbert", ALBERT, albert_classification_head, albert_masked_lm_head),
    **family_classes("TFElectra", ELECTRA, first_token_classification_head, electra_masked_lm_head),
    **family_classes(
        "TFDistilBert", DISTILBERT, distilbert_classification_head, distilbert_masked_lm_head,
        dropout_question_answering_head,
    ),
}


def supports_packing(model: tf_keras.Model) -> bool:
    return type(model).__name__ in PACKED_CLASSES


def run_packed_model(
    model: tf_keras.Model,
    features: dict[str, tf.Tensor],
    training: bool,
    *,
    max_rows: int | None,
    max_tokens: int | None,
) -> tf.Tensor:
    """The model's output for the batch, computed on packed rows chunk by chunk."""
    family, head, first_token = PACKED_CLASSES[type(model).__name__]
    main = getattr(model, family.main)
    positions = family.position_ids(main, features["input_ids"])

    hidden, where = run_packed(
        lambda packed: family.encode(main, packed, training),
        {**features, "position_ids": positions},
        max_rows=max_rows,
        max_tokens=max_tokens,
        hidden_size=int(model.config.hidden_size),
        dtype=model.compute_dtype,
    )
    return head_output(model, head, first_token, hidden, where, training)


def head_output(
    model: tf_keras.Model, head: Head, first_token: bool, hidden, where: Layout, training: bool
) -> tf.Tensor:
    if first_token:
        return head(model, first_tokens(hidden, where), training)
    return unpack(head(model, hidden, training), where)
