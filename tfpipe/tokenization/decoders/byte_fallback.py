"""`ByteFallback`: runs of `<0xHH>` tokens back to the bytes they stand for.

A run that is valid UTF-8 becomes one token of its text; an invalid run, one U+FFFD token per
byte, as tokenizers makes them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import BYTE_STRINGS, is_first
from tfpipe.tokenization.ragged_ops import previous, row_ids, select

# Rust's u8::from_str_radix(token[3..5], 16) also takes a sign: "<0x+F>" is byte 15.
BYTE_TOKEN = r"<0x(?:\+[0-9A-Fa-f]|[0-9A-Fa-f]{2})>"
REPLACEMENT = "\ufffd"


def _hex_digits() -> np.ndarray:
    """Each ASCII byte's hex value (0 for the others)."""
    digits = np.zeros(256, np.int32)
    for char in "0123456789abcdefABCDEF":
        digits[ord(char)] = int(char, 16)
    return digits


class ByteFallback:
    def __init__(self, component: dict) -> None:
        del component  # no options

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        values = tokens.values
        is_byte = tf.strings.regex_full_match(values, BYTE_TOKEN)
        byte = _byte_values(select(values, is_byte))
        starts = is_byte & (is_first(tokens) | ~previous(is_byte, False))
        run = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        runs = tf.reduce_sum(tf.cast(starts, tf.int32))
        text = tf.strings.unsorted_segment_join(
            tf.gather(tf.constant(BYTE_STRINGS), byte), select(run, is_byte), runs
        )
        decoded = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
        valid = tf.equal(tf.strings.unicode_encode(decoded, "UTF-8"), text)
        # Padded by one run so that tokens outside any run (run -1) index a real one.
        at = tf.where(is_byte, run, runs)
        run_valid = tf.gather(tf.concat([valid, [True]], 0), at)
        run_text = tf.gather(tf.concat([text, [""]], 0), at)
        out = tf.where(is_byte, tf.where(run_valid, run_text, REPLACEMENT), values)
        kept = ~is_byte | starts | ~run_valid
        lengths = tf.math.unsorted_segment_sum(
            tf.cast(kept, tf.int64), row_ids(tokens), tokens.nrows()
        )
        return tf.RaggedTensor.from_row_lengths(select(out, kept), lengths, validate=False)


def _byte_values(byte_tokens: tf.Tensor) -> tf.Tensor:
    """The byte of each `<0xHH>` (or `<0x+H>`) token."""
    pair = tf.cast(tf.io.decode_raw(tf.strings.substr(byte_tokens, 3, 2), tf.uint8), tf.int32)
    pair = tf.reshape(pair, [-1, 2])
    digits = tf.gather(tf.constant(_hex_digits()), pair)
    signed = tf.equal(pair[:, 0], ord("+"))
    return tf.where(signed, digits[:, 1], digits[:, 0] * 16 + digits[:, 1])
