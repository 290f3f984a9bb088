"""The model on length-sorted chunks of a batch, each cut to its own longest row.

A batch padded to its longest row makes every row pay for that length: on mixed-length text
about half of what the model computes is padding. Sorting the rows by length and running the
model chunk by chunk, each chunk cut to the columns its longest row uses, computes little
more than the real tokens. Only trailing padding columns are cut, so every token keeps its
position and the results are the whole batch's up to float rounding.

A chunk takes, from the shortest rows not yet run, as many as fit ``max_tokens`` padded
tokens (rows × the chunk's width; at least one row) and at most ``max_rows``: short rows go
in wide chunks that keep the matrix units busy, long rows in narrow ones. A batch that fits
the budget, such as one short request, runs as a single chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push

# Padded tokens per chunk by default: of 256, 512 and 1024 (with and without a row cap), the
# best on mixed-length batches with no loss on uniform ones or at batch 1, for MiniLM on
# 2 cores (bench/chunking.py, docs/benchmarks.md).
DEFAULT_MAX_CHUNK_TOKENS = 512

Run = Callable[[dict[str, tf.Tensor]], tf.Tensor]


def checked_limit(name: str, value: int | None) -> int | None:
    """``value`` if it is None or a positive integer; a ValueError naming ``name`` if not."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, not {value!r}")
    return value


def used_columns(attention_mask: tf.Tensor) -> tf.Tensor:
    """Per row, the columns up to its last real token (its length under right padding)."""
    mask = tf.cast(attention_mask, tf.int32)
    width = tf.shape(mask)[1]
    return tf.reduce_max(tf.where(mask > 0, tf.range(1, width + 1), 0), axis=1)


def chunk_rows(
    sorted_used: tf.Tensor, start: tf.Tensor, max_rows: int | None, max_tokens: int | None
) -> tf.Tensor:
    """How many rows from ``start`` the next chunk takes (``sorted_used`` ascending)."""
    remaining = tf.size(sorted_used) - start
    rows = remaining
    if max_tokens is not None:
        widths = tf.maximum(sorted_used[start:], 1)
        padded = tf.range(1, remaining + 1) * widths
        rows = tf.maximum(tf.reduce_sum(tf.cast(padded <= max_tokens, tf.int32)), 1)
    if max_rows is not None:
        rows = tf.minimum(rows, max_rows)
    return rows


def traced_once(run: Run, features: dict[str, tf.Tensor]) -> Run:
    """``run`` as one function over chunks of ``features`` (their dtypes and ranks, any
    sizes): the first chunk and the loop's call it, so the model is traced once, not twice
    (tracing is much of a pipeline's build and export time; the runtime inlines the calls).
    Run eagerly, nothing is traced, and ``run`` is returned as it is."""
    if tf.executing_eagerly():
        return run
    signature = {
        name: tf.TensorSpec([None] * value.shape.rank, value.dtype)
        for name, value in features.items()
    }
    return tf.function(run, input_signature=[signature], autograph=False)


def stacked_by_dtype(features: dict[str, tf.Tensor]) -> list[tuple[list[str], tf.Tensor]]:
    """The features stacked along a new first axis, one stack per dtype (with the names in
    it): one gather cuts a chunk from all of them, and the chunk loop takes in one tensor per
    dtype instead of one per feature (each loop input costs a handful of nodes per request)."""
    groups: dict[tf.DType, list[str]] = {}
    for name, value in features.items():
        groups.setdefault(value.dtype, []).append(name)
    return [(names, tf.stack([features[name] for name in names])) for names in groups.values()]


def run_in_chunks(
    run: Run,
    features: dict[str, tf.Tensor],
    *,
    max_rows: int | None,
    max_tokens: int | None,
    per_token: bool,
    element_shape: list[int],
    dtype: tf.DType,
) -> tf.Tensor:
    """``run(features)`` computed chunk by chunk, rows back in input order.

    ``features`` are [rows, width] tensors. ``per_token`` outputs ([rows, width, ...]) are
    padded back to the batch's width; ``element_shape`` is that of one chunk's output with -1
    for unknown sizes. The caller handles an empty batch: the first chunk needs at least one
    row.
    """
    run = traced_once(run, features)
    used = used_columns(features["attention_mask"])
    batch, width = tf.shape(used)[0], tf.shape(features["attention_mask"])[1]
    order = tf.argsort(used, stable=True)
    sorted_used = tf.gather(used, order)
    stacks = stacked_by_dtype(features)

    def run_chunk(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rows = chunk_rows(sorted_used, start, max_rows, max_tokens)
        chosen = order[start : start + rows]
        columns = tf.maximum(sorted_used[start + rows - 1], 1)
        chunk = {}
        for names, stack in stacks:
            cut = tf.gather(stack, chosen, axis=1)[:, :, :columns]
            chunk.update(zip(names, tf.unstack(cut, num=len(names)), strict=True))
        output = run(chunk)
        if per_token:
            padding = [[0, 0], [0, width - columns]] + [[0, 0]] * (len(element_shape) - 2)
            output = tf.pad(output, padding)
        return rows, output

    def step(start, results):
        rows, output = run_chunk(start)
        return start + rows, push(results, output)

    # The first chunk runs outside the loop: a batch that fits one chunk (a single request)
    # never enters it, and ops in a loop frame cost more to schedule.
    rows, first = run_chunk(tf.constant(0))
    _, results = tf.while_loop(
        lambda start, _: start < batch,
        step,
        (rows, push(empty_list(dtype, element_shape), first)),
        shape_invariants=(tf.TensorShape([]), HANDLE_SHAPE),
    )
    ordered = concat(results, dtype, element_shape)
    return tf.gather(ordered, tf.math.invert_permutation(order))
