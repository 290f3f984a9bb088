"""Packed batches: the rows of a mixed-length batch side by side in rows as wide as its longest.

Chunking (tfpipe.chunking) keeps padding out of the model's work, but a batch of short texts
still takes several model calls of small matrices. Packing first puts rows side by side, first
fit longest first, in packed rows as wide as the batch; each token keeps its own position id
(the model's for the batch, a feature like the others) and attends only to the real tokens of
its own row (an attention mask per packed row that compares row ids), so every row's results
are the whole batch's up to float rounding. The packed rows are then chunked like any batch.

A batch that is not right-padded (left padding, a row without tokens) or has one row keeps its
layout: each row is a packed row of its own, and the model computes every column, as for the
whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from tfpipe.chunking import run_in_chunks

# The features a packed model reads beside the batch's own: the row each column belongs to
# (0 where nothing is computed) and whether it is a key the row's tokens attend to.
ROW_IDS = "row_ids"
KEYS = "key_mask"
EXTRA = (ROW_IDS, KEYS)
Encode = Callable[[dict[str, tf.Tensor]], tf.Tensor]


class Layout(NamedTuple):
    """Where each row of the batch went: its packed row and first column there, and which of
    its columns are computed (real tokens when packed, all columns when kept as they were)."""

    slot: tf.Tensor
    offset: tf.Tensor
    computed: tf.Tensor
    count: tf.Tensor


def first_fit_decreasing(lengths: tf.Tensor, capacity: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(slot, offset) per row: rows longest first, each in the first packed row with room
    for it, after the rows already there. Every length must be at most ``capacity``."""
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)
    ordered = tf.gather(lengths, order)
    count = tf.size(lengths)

    def place(index, fill, slots, offsets):
        length = ordered[index]
        slot = tf.argmax(fill + length <= capacity, output_type=tf.int32)
        at = tf.reshape(index, [1, 1])
        return (
            index + 1,
            tf.tensor_scatter_nd_add(fill, tf.reshape(slot, [1, 1]), tf.reshape(length, [1])),
            tf.tensor_scatter_nd_update(slots, at, tf.reshape(slot, [1])),
            tf.tensor_scatter_nd_update(offsets, at, tf.reshape(fill[slot], [1])),
        )

    zeros = tf.zeros_like(lengths)
    _, _, slots, offsets = tf.while_loop(
        lambda index, *_: index < count, place, (tf.constant(0), zeros, zeros, zeros)
    )
    back = tf.math.invert_permutation(order)
    return tf.gather(slots, back), tf.gather(offsets, back)


def packable(attention_mask: tf.Tensor) -> tf.Tensor:
    """Whether the batch is right-padded, has more than one row and no row without tokens."""
    mask = tf.cast(attention_mask, tf.int32)
    lengths = tf.reduce_sum(mask, axis=1)
    real = tf.sequence_mask(lengths, tf.shape(mask)[1])
    return (
        (tf.shape(mask)[0] > 1)
        & tf.reduce_all(tf.equal(real, mask > 0))
        & tf.reduce_all(lengths > 0)
    )


def pack(features: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], Layout]:
    """The batch's features in packed rows (``position_ids`` among them: each token's, for
    the batch), with ``ROW_IDS``, ``KEYS`` and the ``attention_mask`` of the computed columns
    (what chunking cuts by); and the layout to read rows back with. A lowered `tf.cond`: a
    single request visits the packing ops dead, which costs it less than a functional `If`'s
    function call (bench/serving.py's batch 1)."""
    names = sorted(features)

    def packed() -> tuple:
        mask = tf.cast(features["attention_mask"], tf.int32)
        lengths = tf.reduce_sum(mask, axis=1)
        slot, offset = first_fit_decreasing(lengths, tf.shape(mask)[1])
        return _scattered(features, Layout(slot, offset, mask > 0, tf.reduce_max(slot) + 1))

    def kept() -> tuple:
        mask = features["attention_mask"]
        batch, width = tf.shape(mask)[0], tf.shape(mask)[1]
        rows = tf.range(batch)
        extra = {
            ROW_IDS: tf.broadcast_to(rows[:, None] + 1, [batch, width]),
            KEYS: tf.cast(mask > 0, tf.int32),
            "attention_mask": tf.ones_like(mask),
        }
        where = Layout(rows, tf.zeros([batch], tf.int32), tf.ones([batch, width], tf.bool), batch)
        return _flat({**features, **extra}, names), where

    flat, where = tf.cond(packable(features["attention_mask"]), packed, kept)
    return dict(zip([*names, *EXTRA], flat, strict=True)), where


def _flat(packed: dict[str, tf.Tensor], names: list[str]) -> tuple:
    return tuple(packed[name] for name in [*names, *EXTRA])


def _scattered(features: dict[str, tf.Tensor], where: Layout) -> tuple:
    mask = features["attention_mask"]
    at = tf.where(where.computed)
    row = tf.cast(at[:, 0], tf.int32)
    column = tf.cast(at[:, 1], tf.int32)
    target = tf.stack([tf.gather(where.slot, row), tf.gather(where.offset, row) + column], 1)
    shape = tf.stack([where.count, tf.shape(mask)[1]])

    def scattered(values: tf.Tensor) -> tf.Tensor:
        return tf.scatter_nd(target, values, shape)

    packed = {name: scattered(tf.gather_nd(value, at)) for name, value in features.items()}
    packed[ROW_IDS] = scattered(row + 1)
    packed[KEYS] = tf.cast(packed[ROW_IDS] > 0, tf.int32)
    packed["attention_mask"] = tf.cast(packed[KEYS], mask.dtype)
    return _flat(packed, sorted(features)), where


def allowed_keys(packed: dict[str, tf.Tensor]) -> tf.Tensor:
    """[rows, 1, width, width]: whether a column may attend to a column (same row, a key)."""
    rows = packed[ROW_IDS]
    allowed = tf.equal(rows[:, :, None], rows[:, None, :]) & (packed[KEYS][:, None, :] > 0)
    return allowed[:, None]


def attention_bias(packed: dict[str, tf.Tensor], dtype: tf.DType) -> tf.Tensor:
    """[rows, 1, width, width]: 0 where `allowed_keys`, -10000 elsewhere (the value
    transformers' BERT adds for masked keys)."""
    return (1.0 - tf.cast(allowed_keys(packed), dtype)) * -10000.0


def unpack(values: tf.Tensor, where: Layout) -> tf.Tensor:
    """Per-token values of packed rows → the batch's [rows, width, ...]; columns not computed
    are zeros."""
    batch, width = tf.shape(where.computed)[0], tf.shape(where.computed)[1]
    column = tf.range(width)[None, :]
    offsets = tf.minimum(where.offset[:, None] + column, width - 1)
    slots = tf.broadcast_to(where.slot[:, None], [batch, width])
    gathered = tf.gather_nd(values, tf.stack([slots, offsets], axis=-1))
    computed = tf.reshape(where.computed, [batch, width] + [1] * (len(values.shape) - 2))
    return tf.where(computed, gathered, tf.zeros_like(gathered))


def first_tokens(values: tf.Tensor, where: Layout) -> tf.Tensor:
    """Per row, the packed value at its column 0."""
    return tf.gather_nd(values, tf.stack([where.slot, where.offset], axis=1))


def run_packed(
    encode: Encode,
    features: dict[str, tf.Tensor],
    *,
    max_rows: int | None,
    max_tokens: int | None,
    hidden_size: int,
    dtype: tf.DType,
) -> tuple[tf.Tensor, Layout]:
    """``encode`` (packed features → [rows, width, hidden_size]) on the packed batch, chunk by
    chunk; returns the packed hidden states and the layout to read rows back with."""
    packed, where = pack(features)
    hidden = run_in_chunks(
        encode,
        packed,
        max_rows=max_rows,
        max_tokens=max_tokens,
        per_token=True,
        element_shape=[-1, -1, hidden_size],
        dtype=dtype,
    )
    return hidden, where
