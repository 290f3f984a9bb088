"""Ragged-batch helpers whose cost is linear in the number of values.

TensorFlow's own `RaggedTensor.value_rowids()` and `tf.repeat` (and the ragged ops built on
them: `tf.ragged.boolean_mask`, ragged `tf.concat`, ragged cumsum) materialise a
[rows, longest row] mask: a batch with one 1 MB text and many short pieces asks for
gigabytes. Everything here works from row splits with bincount, cumsum and gathers instead.
"""

from __future__ import annotations

import tensorflow as tf

# Positions, lengths and token counts are int32 in the graph.
INT32_MAX = 2**31 - 1


def bincount(ids: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """How often each of 0 … size - 1 occurs in `ids` (others are ignored), in `ids`' dtype.

    The DenseBincount op itself: `tf.math.bincount` wraps it in some ten ops of argument
    checks, paid on every call (a measurable share of a batch-1 request).
    """
    return tf.raw_ops.DenseBincount(
        input=ids, size=tf.cast(size, ids.dtype), weights=tf.zeros([0], ids.dtype)
    )


def select(values: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """`tf.boolean_mask` for a 1-D mask, in a third of its ops (its argument checks run on
    every call: a measurable share of a batch-1 request)."""
    return tf.gather(values, tf.reshape(tf.where(keep), [-1]))


def repeat_range(lengths: tf.Tensor) -> tf.Tensor:
    """[0] * lengths[0] + [1] * lengths[1] + …, as int32."""
    lengths = tf.cast(lengths, tf.int32)
    total = tf.reduce_sum(lengths)
    starts = tf.cumsum(lengths, exclusive=True)
    return tf.cumsum(bincount(starts, total)) - 1


def rows_from_ids(values: tf.Tensor, ids: tf.Tensor, nrows: tf.Tensor) -> tf.RaggedTensor:
    """`RaggedTensor.from_value_rowids(validate=False)` for sorted row ids, in fewer ops."""
    ids = tf.cast(ids, tf.int64)
    splits = tf.cumsum(bincount(ids, nrows))
    return tf.RaggedTensor.from_row_splits(
        values, tf.concat([tf.zeros([1], tf.int64), splits], 0), validate=False
    )


def rows_from_starts(values: tf.Tensor, starts: tf.Tensor) -> tf.RaggedTensor:
    """Rows of `values` that begin where `starts` holds (it holds at the first value)."""
    splits = tf.concat([tf.where(starts)[:, 0], [tf.size(values, out_type=tf.int64)]], 0)
    return tf.RaggedTensor.from_row_splits(values, splits, validate=False)


def rows_starting_at(rows: tf.RaggedTensor) -> tf.Tensor:
    """How many rows start at each value (int32): empty rows start where the next one does,
    rows starting past the last value are not counted."""
    return bincount(tf.cast(rows.row_starts(), tf.int32), tf.size(rows.values))


def row_ids(rows: tf.RaggedTensor) -> tf.Tensor:
    """The row of every value (int32)."""
    return tf.cumsum(rows_starting_at(rows)) - 1


def positions_in_rows(rows: tf.RaggedTensor, ids: tf.Tensor | None = None) -> tf.Tensor:
    """Index of every value within its row (int32)."""
    ids = row_ids(rows) if ids is None else ids
    starts = tf.cast(rows.row_starts(), tf.int32)
    return tf.range(tf.size(ids)) - tf.gather(starts, ids)


def row_starts_mask(rows: tf.RaggedTensor) -> tf.Tensor:
    """True at the first value of every row."""
    return rows_starting_at(rows) > 0


def mask_values(rows: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
    """Keep the values where `keep` (flat, one per value) holds, rows kept in place."""
    kept = tf.math.unsorted_segment_sum(tf.cast(keep, tf.int64), row_ids(rows), rows.nrows())
    return tf.RaggedTensor.from_row_lengths(
        select(rows.values, keep), kept, validate=False
    )


def merge_inner(rows: tf.RaggedTensor) -> tf.RaggedTensor:
    """[a, (b), (c)] → [a, (b·c)]: `merge_dims(1, 2)` without its validation asserts, which
    cost some thirty ops per call (a measurable share of a batch-1 request)."""
    splits = tf.gather(rows.values.row_splits, rows.row_splits)
    return tf.RaggedTensor.from_row_splits(rows.values.values, splits, validate=False)


def empty_rows(count: int | tf.Tensor) -> tf.RaggedTensor:
    """`count` empty rows of int64 values."""
    return tf.RaggedTensor.from_row_lengths(
        tf.zeros([0], tf.int64), tf.zeros([count], tf.int64), validate=False
    )


def one_per_row(values: tf.Tensor) -> tf.RaggedTensor:
    """[n, ...] values → [n, (1), ...] rows of one value each."""
    splits = tf.range(tf.shape(values, out_type=tf.int64)[0] + 1)
    return tf.RaggedTensor.from_row_splits(values, splits, validate=False)


def ordered_pieces(
    text_rows: tf.RaggedTensor, token_values: tf.Tensor, is_token: tf.Tensor
) -> tf.RaggedTensor:
    """[pieces, (values)]: piece i is `token_values[i]` alone where `is_token[i]`, else the
    next row of `text_rows` (the text pieces' rows, in order)."""
    tokens = one_per_row(select(token_values, is_token))
    combined = tf.concat([text_rows, tokens], axis=0)
    source = tf.concat(
        [tf.where(~is_token)[:, 0], tf.where(is_token)[:, 0]], axis=0
    )
    return tf.gather(combined, tf.argsort(source))


def replace_rows(
    rows: tf.RaggedTensor | tf.Tensor,
    replaced: tf.Tensor,
    replacements: tf.RaggedTensor | tf.Tensor,
) -> tf.RaggedTensor | tf.Tensor:
    """`rows` with the rows (or values, for a 1-D tensor) where `replaced` holds swapped, in
    order, for `replacements`."""
    count = tf.size(replaced)
    at = tf.cumsum(tf.cast(replaced, tf.int32)) - 1 + count
    index = tf.where(replaced, at, tf.range(count))
    return tf.gather(tf.concat([rows, replacements], axis=0), index)


def concat_rows(parts: list[tf.RaggedTensor]) -> tf.RaggedTensor:
    """Row-wise concatenation of ragged batches with the same number of rows."""
    lengths = [tf.cast(p.row_lengths(), tf.int32) for p in parts]
    total = tf.add_n(lengths)
    offset = tf.cumsum(total, exclusive=True)
    indices = []
    for part, length in zip(parts, lengths, strict=True):
        ids = row_ids(part)
        indices.append(tf.gather(offset, ids) + positions_in_rows(part, ids))
        offset += length
    values = tf.dynamic_stitch(indices, [p.values for p in parts])
    return tf.RaggedTensor.from_row_lengths(values, tf.cast(total, tf.int64), validate=False)


def previous(values: tf.Tensor, fill) -> tf.Tensor:
    """values shifted right by one: result[i] = values[i - 1], result[0] = fill.

    Two ops (a concat and a slice; empty stays empty): batch-1 requests run dozens of shifts.
    """
    return tf.concat([tf.constant([fill], values.dtype), values], axis=0)[:-1]


def following(values: tf.Tensor, fill) -> tf.Tensor:
    """values shifted left by one: result[i] = values[i + 1], result[-1] = fill."""
    return tf.concat([values, tf.constant([fill], values.dtype)], axis=0)[1:]


def expand(counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(source, index within source) for each item expanded `counts` times."""
    source = repeat_range(counts)
    within = tf.range(tf.size(source)) - tf.gather(tf.cumsum(counts, exclusive=True), source)
    return source, within


def expand_values(
    lengths: tf.Tensor, row_splits: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Expand each value into `lengths[i]` outputs.

    Returns (source index of every output, its index within its source's outputs, new row
    splits) so callers can gather whatever each source produces.
    """
    source, within = expand(lengths)
    cumulative = tf.concat([[0], tf.cumsum(lengths)], axis=0)
    new_splits = tf.gather(cumulative, tf.cast(row_splits, tf.int32))
    return source, within, tf.cast(new_splits, row_splits.dtype)


def cumsum_in_rows(values: tf.Tensor, rows: tf.RaggedTensor, exclusive: bool = False) -> tf.Tensor:
    """The cumulative sum of `values` (flat, as `rows.values`) restarting at every row."""
    total = tf.cumsum(values, exclusive=True)
    padded = tf.concat([total, tf.reduce_sum(values, keepdims=True)], 0)
    start = tf.gather(padded, tf.cast(rows.row_starts(), tf.int32))
    within = total - tf.gather(start, row_ids(rows))
    return within if exclusive else within + values
