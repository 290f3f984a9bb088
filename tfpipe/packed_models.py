"""Models that run packed batches (tfpipe.packing), by transformers class: the only list of them.

A packed row holds several texts, so the model must take each token's position id and a mask
per packed row instead of one per text. transformers' TF BERT takes position ids but builds its
own [rows, 1, 1, width] mask from a [rows, width] one, so its embeddings and encoder are called
here directly with the packed row's mask, then its head, exactly as the class's own `call`
chains them. Any other class runs unpacked.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tf_keras

from tfpipe.packing import Layout, attention_bias, first_tokens, run_packed, unpack

Head = Callable[[tf_keras.Model, tf.Tensor, bool], tf.Tensor]


def classification_head(model: tf_keras.Model, first: tf.Tensor, training: bool) -> tf.Tensor:
    pooled = model.bert.pooler(hidden_states=first[:, None, :])
    return model.classifier(inputs=model.dropout(inputs=pooled, training=training))


def token_classification_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    return model.classifier(inputs=model.dropout(inputs=hidden, training=training))


def question_answering_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool):
    """[..., 2]: start and end logits, as TransformerLayer stacks them."""
    return model.qa_outputs(inputs=hidden)


def masked_lm_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool) -> tf.Tensor:
    return model.mlm(sequence_output=hidden, training=training)


def no_head(model: tf_keras.Model, hidden: tf.Tensor, training: bool) -> tf.Tensor:
    return hidden


# Class name → (head, whether it reads each text's first token rather than every token).
BERT_HEADS: dict[str, tuple[Head, bool]] = {
    "TFBertForSequenceClassification": (classification_head, True),
    "TFBertForTokenClassification": (token_classification_head, False),
    "TFBertForQuestionAnswering": (question_answering_head, False),
    "TFBertForMaskedLM": (masked_lm_head, False),
    "TFBertModel": (no_head, False),
}


def supports_packing(model: tf_keras.Model) -> bool:
    return type(model).__name__ in BERT_HEADS


def run_packed_bert(
    model: tf_keras.Model,
    features: dict[str, tf.Tensor],
    training: bool,
    *,
    max_rows: int | None,
    max_tokens: int | None,
) -> tf.Tensor:
    """The model's output for the batch, computed on packed rows chunk by chunk."""
    head, first_token = BERT_HEADS[type(model).__name__]
    main = model.bert
    layers = model.config.num_hidden_layers

    def encode(packed: dict[str, tf.Tensor]) -> tf.Tensor:
        embedded = main.embeddings(
            input_ids=packed["input_ids"],
            position_ids=packed["position_ids"],
            token_type_ids=packed.get("token_type_ids"),
            training=training,
        )
        return main.encoder(
            hidden_states=embedded,
            attention_mask=attention_bias(packed, embedded.dtype),
            head_mask=[None] * layers,
            encoder_hidden_states=None,
            encoder_attention_mask=None,
            past_key_values=None,
            use_cache=False,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
            training=training,
        ).last_hidden_state

    hidden, where = run_packed(
        encode,
        features,
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
