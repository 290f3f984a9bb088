"""The fill-mask task: the best tokens for a text's mask token, with the text they complete.

As transformers' FillMaskPipeline (4.54.1) on a text with one mask token: the softmax of
the logits at the mask, its ``top_k`` tokens (``tf.math.top_k``, so ties keep the lower id
first), each token decoded alone (``token_str``) and the text re-decoded with the token in
place of the mask (``sequence``). Texts without a mask get an empty answer; texts with
several get transformers' answer for their first mask (docs/pipelines.md, Fill-mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tfpipe.build_context import BuildContext, PipelineError, text_input
from tfpipe.tokenization.detokenizer_layer import DetokenizerLayer, token_table
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer
from tfpipe.transformer import TransformerLayer
from tfpipe.unconverted import unconverted

DEFAULT_TOP_K = 5
# transformers' stable_softmax adds this to the logits before tf.nn.softmax.
SOFTMAX_SHIFT = 1e-9
# The answer for a text without a mask token, in each output.
NO_TOKEN = -1


def build_fill_mask(context: BuildContext, *, top_k: int = DEFAULT_TOP_K) -> tf_keras.Model:
    """The ``top_k`` tokens for each text's (first) mask token, with scores and texts."""
    check_top_k(top_k, context.model_config().get("vocab_size"))
    tokenizer = context.tokenizer()
    mask_id = mask_token_id(tokenizer)
    mask_logits = MaskLogits.wrapping(context.transformer("fill-mask", tokenizer), mask_id)
    check_top_k(top_k, mask_logits.output_width)
    inputs = {"text": text_input()}
    encoded = tokenizer(inputs["text"])
    ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    predictions = MaskPredictions(mask_id, top_k, name="mask_predictions")(
        mask_logits(encoded), ids, attention_mask
    )
    texts = FilledTexts(
        tokenizer.tokenizer_json,
        tokenizer.pad_token_id,
        tokenizer.settings["clean_up_tokenization_spaces"],
        name="filled_texts",
    )(ids, attention_mask, predictions["token"], predictions["mask_position"],
      predictions["num_masks"])
    outputs = {
        "token": predictions["token"],
        "token_str": texts["token_str"],
        "score": predictions["score"],
        "sequence": texts["sequence"],
        "num_masks": predictions["num_masks"],
    }
    return tf_keras.Model(inputs, outputs, name="fill_mask")


def check_top_k(top_k: int, vocab_size: int | None) -> None:
    """Refuse a ``top_k`` that ``tf.math.top_k`` would fail on at run time."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise PipelineError(f"top_k must be a positive integer, not {top_k!r}")
    if vocab_size is not None and top_k > vocab_size:
        raise PipelineError(f"top_k {top_k} is more than the vocabulary's {vocab_size} tokens")


def mask_token_id(tokenizer: TokenizerLayer) -> int:
    """The id of the mask token transformers' tokenizer names (tokenizer_config.json or
    special_tokens_map.json), read with the tokenizer's settings."""
    index = tokenizer.settings.get("mask_token_id")
    if index is None:
        raise PipelineError(
            "the tokenizer has no mask token, so it cannot fill masks (a fill-mask checkpoint "
            "names one, e.g. [MASK] or <mask>; a tokenizer.json alone names none: pass the "
            "checkpoint folder)"
        )
    return int(index)


def first_mask(
    input_ids: tf.Tensor, attention_mask: tf.Tensor, mask_token_id: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per row: the column of its first mask token (the width when it has none) and how many
    mask tokens it has, among the tokens the attention mask keeps."""
    is_mask = tf.logical_and(
        tf.equal(input_ids, tf.cast(mask_token_id, input_ids.dtype)),
        tf.not_equal(attention_mask, 0),
    )
    width = tf.shape(input_ids)[1]
    columns = tf.broadcast_to(tf.range(width), tf.shape(input_ids))
    position = tf.reduce_min(tf.where(is_mask, columns, width), axis=1)
    return position, tf.reduce_sum(tf.cast(is_mask, tf.int32), axis=1)


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class MaskLogits(TransformerLayer):
    """The masked-LM logits at each text's first mask token, ``[batch, vocab]`` (another
    row for a text without one), taken from each chunk as it is run (tfpipe.chunking): the
    ``[rows, sequence, vocab]`` logits of the whole batch, some 240 MiB at batch 32 x 64
    tokens for a 30k vocabulary, never exist at once."""

    def __init__(
        self, task: str, model_config: dict[str, Any], *, mask_token_id: int, **kwargs: Any
    ) -> None:
        super().__init__(task, model_config, **kwargs)
        self.mask_token_id = int(mask_token_id)

    @classmethod
    def wrapping(cls, transformer: TransformerLayer, mask_token_id: int) -> MaskLogits:
        """The layer running ``transformer``'s model, chunked as it is."""
        config = transformer.get_config()
        return cls(
            config["task"],
            config["model_config"],
            mask_token_id=mask_token_id,
            hf_model=transformer.hf_model,
            micro_batch_size=config["micro_batch_size"],
            max_chunk_tokens=config["max_chunk_tokens"],
            name=transformer.name,
        )

    # Each chunk's logits are read at its rows' mask positions (`_run`), so rows stay unpacked.
    packs_rows = False

    @property
    def per_token(self) -> bool:
        return False

    def _run(self, features: dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        logits = super()._run(features, training)
        position, _ = first_mask(
            features["input_ids"], features["attention_mask"], self.mask_token_id
        )
        last = tf.maximum(tf.shape(logits)[1] - 1, 0)
        return tf.gather(logits, tf.minimum(position, last), batch_dims=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_token_id": self.mask_token_id}


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class MaskPredictions(tf_keras.layers.Layer):
    """The logits at each text's first mask ``[batch, vocab]`` to the ``top_k`` tokens and
    their probabilities, as transformers' stable softmax and ``tf.math.top_k``.

    Outputs ``token`` (int32 ``[batch, k]``, -1 without a mask), ``score`` (float32, 0
    without a mask), ``num_masks`` (int32 ``[batch]``) and ``mask_position`` (int32
    ``[batch]``, the sequence length without a mask).
    """

    def __init__(self, mask_token_id: int, top_k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_token_id = int(mask_token_id)
        self.top_k = int(top_k)

    @unconverted
    def call(
        self, mask_logits: tf.Tensor, input_ids: tf.Tensor, attention_mask: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        position, num_masks = first_mask(input_ids, attention_mask, self.mask_token_id)
        probabilities = tf.nn.softmax(tf.cast(mask_logits, tf.float32) + SOFTMAX_SHIFT, axis=-1)
        scores, tokens = tf.math.top_k(probabilities, k=self.top_k)
        found = (num_masks > 0)[:, None]
        return {
            "token": tf.where(found, tokens, NO_TOKEN),
            "score": tf.where(found, scores, 0.0),
            "num_masks": num_masks,
            "mask_position": position,
        }

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_token_id": self.mask_token_id, "top_k": self.top_k}


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class FilledTexts(tf_keras.layers.Layer):
    """Each predicted token decoded alone (``token_str``) and the text with it in place of
    the mask (``sequence``), both ``[batch, k]`` strings, "" for texts without a mask.

    As transformers: pad-token ids are dropped from the sequence, which is decoded skipping
    special tokens when the text has one mask, and keeping them (other masks too) when it
    has several; ``token_str`` is ``decode([token])``.
    """

    def __init__(
        self,
        tokenizer_json: str,
        pad_token_id: int | None,
        clean_up_tokenization_spaces: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tokenizer_json = tokenizer_json
        self.pad_token_id = None if pad_token_id is None else int(pad_token_id)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.detokenizer = DetokenizerLayer(
            tokenizer_json,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            name="detokenizer",
        )
        # Per id (and one past the last, for ids no token has): is it a special token's?
        self._special = np.append(token_table(tokenizer_json)[2], False)

    @unconverted
    def call(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor,
        token: tf.Tensor,
        mask_position: tf.Tensor,
        num_masks: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        batch, top_k = tf.shape(token)[0], tf.shape(token)[1]
        has_mask = (num_masks > 0)[:, None]
        return {
            "token_str": tf.reshape(self._decode_tokens(token), [batch, top_k]),
            "sequence": tf.where(
                has_mask,
                self._filled_sequences(input_ids, attention_mask, token, mask_position, num_masks),
                "",
            ),
        }

    def _decode_tokens(self, token: tf.Tensor) -> tf.Tensor:
        """``decode([token])`` per token, "" for -1 (no mask)."""
        flat = tf.reshape(token, [-1])
        present = flat >= 0
        ids = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(flat, present), tf.cast(present, tf.int64), validate=False
        )
        return self.detokenizer(ids)

    def _filled_sequences(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor,
        token: tf.Tensor,
        mask_position: tf.Tensor,
        num_masks: tf.Tensor,
    ) -> tf.Tensor:
        """[batch, k] texts: the ids with each token at the mask, decoded as transformers."""
        shape = tf.shape(token)
        width = tf.shape(input_ids)[1]
        at_mask = tf.equal(tf.range(width)[None, :], mask_position[:, None])[:, None, :]
        ids = tf.cast(input_ids, tf.int32)[:, None, :]
        filled = tf.where(at_mask, token[:, :, None], ids)
        keep = tf.broadcast_to(tf.not_equal(attention_mask, 0)[:, None, :], tf.shape(filled))
        if self.pad_token_id is not None:
            keep &= tf.not_equal(filled, self.pad_token_id)
        last = len(self._special) - 1
        special = tf.gather(tf.constant(self._special), tf.clip_by_value(filled, 0, last))
        one_mask = tf.equal(num_masks, 1)[:, None, None]
        keep &= ~(one_mask & special)
        rows = [shape[0] * shape[1], width]
        kept = tf.cast(tf.reshape(keep, rows), tf.int32)
        text = self.detokenizer(tf.reshape(filled, rows), attention_mask=kept)
        return tf.reshape(text, shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "tokenizer_json": self.tokenizer_json,
            "pad_token_id": self.pad_token_id,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
        }
