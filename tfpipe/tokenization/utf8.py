"""UTF-8 in the graph: code points' encoded lengths and bytes (byte offsets, byte fallback)."""

from __future__ import annotations

import tensorflow as tf


def utf8_lengths(cps: tf.Tensor) -> tf.Tensor:
    """Bytes each code point takes in UTF-8."""
    return 1 + tf.add_n([tf.cast(cps >= bound, tf.int32) for bound in (0x80, 0x800, 0x10000)])


def utf8_byte(cps: tf.Tensor, length: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Byte `index` of the UTF-8 encoding (of `length` bytes) of each code point."""
    lead_mark = tf.gather([0, 0, 0xC0, 0xE0, 0xF0], length)
    shift = 6 * (length - 1 - index)
    payload = tf.bitwise.right_shift(cps, shift)
    lead = tf.where(length == 1, cps, tf.bitwise.bitwise_or(lead_mark, payload))
    continuation = tf.bitwise.bitwise_or(0x80, tf.bitwise.bitwise_and(payload, 0x3F))
    return tf.where(index == 0, lead, continuation)
