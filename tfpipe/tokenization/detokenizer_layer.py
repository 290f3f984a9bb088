"""`DetokenizerLayer`: token ids back to text in the graph, as the HF tokenizer's batch_decode.

Ids become token strings through a table read off the reference tokenizer at build time (an
added token's content first, else the model's token, as tokenizers' `id_to_token`), the
`decoder` section runs on them, and transformers' `clean_up_tokenization` follows when it
is on. As in tokenizers, an id no token has is dropped; a negative id is an error (HF raises
OverflowError).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from tokenizers import Tokenizer

from tfpipe.tokenization.checkpoint import load_reference
from tfpipe.tokenization.decoders import Decoder
from tfpipe.tokenization.decoders.tokens import replace_in_order
from tfpipe.tokenization.decoders.wordpiece import CLEANUP as WORDPIECE_CLEANUP
from tfpipe.tokenization.ragged_ops import repeat_range, select
from tfpipe.unconverted import unconverted

# transformers' PreTrainedTokenizerBase.clean_up_tokenization: the WordPiece decoder's
# clean-up without its "do not" → "don't", in the same order.
CLEAN_UP = tuple(pair for pair in WORDPIECE_CLEANUP if pair != (" do not", " don't"))


def token_table(tokenizer_json: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per id: its token string, whether it has one, and whether that string is a special
    token's (tokenizers skips those by content)."""
    reference = Tokenizer.from_str(tokenizer_json)
    size = max(reference.get_vocab(with_added_tokens=True).values(), default=-1) + 1
    tokens = [reference.id_to_token(index) for index in range(size)]
    special = {
        added.content for added in reference.get_added_tokens_decoder().values() if added.special
    }
    strings = np.array([(token or "").encode() for token in tokens], dtype=object)
    known = np.array([token is not None for token in tokens], bool)
    is_special = np.array([token in special for token in tokens], bool)
    return strings, known, is_special


class DetokenizerLayer(tf_keras.layers.Layer):
    """int ids [batch, length] (plus an optional attention_mask, or ragged ids) → tf.string
    [batch], identical to `tokenizer.batch_decode(ids, skip_special_tokens,
    clean_up_tokenization_spaces)`."""

    def __init__(
        self,
        tokenizer_json: str,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.tokenizer_json = tokenizer_json
        self.skip_special_tokens = bool(skip_special_tokens)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.decoder = Decoder(json.loads(tokenizer_json).get("decoder"))
        strings, known, special = token_table(tokenizer_json)
        if self.skip_special_tokens:
            known &= ~special
        self._strings = np.append(strings, b"")
        self._known = np.append(known, False)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs,
    ) -> DetokenizerLayer:
        """The decoder of a checkpoint folder (or tokenizer.json file); clean-up defaults to
        the checkpoint's `clean_up_tokenization_spaces`, as in transformers."""
        tokenizer_json, settings = load_reference(path)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = settings.get("clean_up_tokenization_spaces", False)
        return cls(tokenizer_json, skip_special_tokens, clean_up_tokenization_spaces, **kwargs)

    @unconverted
    def call(self, ids, attention_mask=None) -> tf.Tensor:
        ids = ids if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise TypeError(f"DetokenizerLayer takes integer token ids, not {ids.dtype.name}")
        values, lengths = _kept_ids(ids, attention_mask)
        checks = [
            tf.debugging.assert_non_negative(
                values, message="DetokenizerLayer: token ids must not be negative"
            )
        ]
        with tf.control_dependencies(checks):
            last = self._known.shape[0] - 1
            index = tf.cast(tf.minimum(values, last), tf.int32)
        known = tf.gather(tf.constant(self._known), index)
        kept_lengths = tf.math.unsorted_segment_sum(
            tf.cast(known, tf.int64), repeat_range(lengths), tf.size(lengths)
        )
        tokens = tf.RaggedTensor.from_row_lengths(
            tf.gather(tf.constant(self._strings), select(index, known)), kept_lengths,
            validate=False,
        )
        text = self.decoder(tokens)
        if self.clean_up_tokenization_spaces:
            text = replace_in_order(text, CLEAN_UP)
        return text

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            tokenizer_json=self.tokenizer_json,
            skip_special_tokens=self.skip_special_tokens,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
        )
        return config


def _kept_ids(ids, attention_mask) -> tuple[tf.Tensor, tf.Tensor]:
    """(flat ids, per-row counts) of the ids the mask keeps (all of ragged ids)."""
    if isinstance(ids, tf.RaggedTensor):
        if attention_mask is not None:
            raise ValueError("DetokenizerLayer: ragged ids take no attention_mask")
        if ids.ragged_rank != 1:
            raise ValueError("DetokenizerLayer takes ids [batch, (length)]")
        return tf.cast(ids.values, tf.int64), ids.row_lengths()
    tf.debugging.assert_rank(ids, 2, message="DetokenizerLayer takes ids [batch, length]")
    keep = tf.ones_like(ids, tf.bool) if attention_mask is None else tf.not_equal(
        attention_mask, 0
    )
    values = tf.cast(tf.boolean_mask(ids, keep), tf.int64)
    return values, tf.reduce_sum(tf.cast(keep, tf.int64), axis=1)
