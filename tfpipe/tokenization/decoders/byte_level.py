"""`ByteLevel`: byte-level characters back to bytes, the row's bytes decoded as UTF-8.

A token with a character outside the byte-level alphabet (an added token's text) is taken
as its own UTF-8 bytes. Each row becomes one token: its bytes decoded with each invalid
sequence as U+FFFD (Rust's from_utf8_lossy, which replaces as Python's errors="replace").
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import BYTE_STRINGS, joined_rows
from tfpipe.tokenization.pre_tokenizers.byte_level import byte_chars
from tfpipe.tokenization.ragged_ops import one_per_row, row_ids


class ByteLevel:
    def __init__(self, component: dict) -> None:
        del component  # its options apply to encoding only
        chars = byte_chars(np.arange(256, dtype=np.int32)).numpy()
        table = np.full(int(chars.max()) + 2, -1, np.int32)
        table[chars] = np.arange(256)
        self.byte_of_char = table

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        cps = tf.strings.unicode_decode(tokens.values, "UTF-8")
        size = self.byte_of_char.shape[0]
        chars = tf.minimum(cps.values, size - 1)
        byte = tf.gather(tf.constant(self.byte_of_char), chars)
        owner = row_ids(cps)
        count = cps.nrows(out_type=tf.int32)
        unmapped = tf.math.unsorted_segment_max(tf.cast(byte < 0, tf.int32), owner, count)
        as_bytes = tf.strings.unsorted_segment_join(
            tf.gather(tf.constant(BYTE_STRINGS), tf.maximum(byte, 0)), owner, count
        )
        token_bytes = tf.where(tf.equal(unmapped, 1), tokens.values, as_bytes)
        text = joined_rows(tokens.with_values(token_bytes))
        decoded = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
        return one_per_row(tf.strings.unicode_encode(decoded, "UTF-8"))
