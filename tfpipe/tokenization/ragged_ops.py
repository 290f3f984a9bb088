"""Small vectorised helpers on ragged code-point batches shared by the pipeline stages."""

from __future__ import annotations

import tensorflow as tf


def row_starts_mask(ragged: tf.RaggedTensor) -> tf.Tensor:
    """True at the first value of every row."""
    positions = tf.range(tf.shape(ragged.values, out_type=ragged.row_splits.dtype)[0])
    return tf.equal(positions, tf.gather(ragged.row_splits, ragged.value_rowids()))


def previous(values: tf.Tensor, fill) -> tf.Tensor:
    """values shifted right by one: result[i] = values[i - 1], result[0] = fill."""
    head = tf.fill([tf.minimum(tf.size(values), 1)], tf.cast(fill, values.dtype))
    return tf.concat([head, values[:-1]], axis=0)


def following(values: tf.Tensor, fill) -> tf.Tensor:
    """values shifted left by one: result[i] = values[i + 1], result[-1] = fill."""
    tail = tf.fill([tf.minimum(tf.size(values), 1)], tf.cast(fill, values.dtype))
    return tf.concat([values[1:], tail], axis=0)


def expand_values(
    lengths: tf.Tensor, row_splits: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Expand each value into `lengths[i]` outputs.

    Returns (source index of every output, its index within its source's outputs, new row
    splits) so callers can gather whatever each source produces.
    """
    source = tf.repeat(tf.range(tf.size(lengths)), lengths)
    starts = tf.cumsum(lengths, exclusive=True)
    within = tf.range(tf.size(source)) - tf.gather(starts, source)
    cumulative = tf.concat([[0], tf.cumsum(lengths)], axis=0)
    new_splits = tf.gather(cumulative, tf.cast(row_splits, tf.int32))
    return source, within, tf.cast(new_splits, row_splits.dtype)
