"""Truncation, as `tokenizers` does it: before special tokens are added, per row.

`max_length` counts the special tokens, so the budget for the sequences is `max_length` minus
the template's special tokens. Strategies and their tie-breaking follow
`tokenizers::utils::truncation::truncate_encodings`.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import mask_values, positions_in_rows, row_ids

STRATEGIES = ("longest_first", "only_first", "only_second")
TOO_SHORT = "Truncation error: Sequence to truncate too short to respect the provided max_length"
NO_SECOND = "Truncation error: Second sequence not provided"


def keep_lengths(
    lengths: list[tf.Tensor], budget: int, strategy: str
) -> tuple[list[tf.Tensor], list[tf.Operation]]:
    """Per-row lengths to keep for each sequence, and the checks that raise HF's errors."""
    total = tf.add_n(lengths) if len(lengths) > 1 else lengths[0]
    over = total > budget
    if budget == 0:
        return [tf.zeros_like(n) for n in lengths], []
    if strategy == "longest_first":
        if len(lengths) == 1:
            return [tf.minimum(lengths[0], budget)], []
        return _longest_first(lengths[0], lengths[1], budget, over), []
    target = 0 if strategy == "only_first" else 1
    checks = []
    if target >= len(lengths):
        checks.append(tf.debugging.Assert(~tf.reduce_any(over), [NO_SECOND]))
        return lengths, checks
    to_remove = total - budget
    too_short = over & (lengths[target] <= to_remove)
    checks.append(tf.debugging.Assert(~tf.reduce_any(too_short), [TOO_SHORT]))
    kept = list(lengths)
    kept[target] = tf.where(over, lengths[target] - to_remove, lengths[target])
    return kept, checks


def _longest_first(n1: tf.Tensor, n2: tf.Tensor, budget: int, over: tf.Tensor):
    swap = n1 > n2
    short = tf.minimum(n1, n2)
    long_kept = tf.where(short > budget, short, tf.maximum(short, budget - short))
    both_cut = short + long_kept > budget
    short_kept = tf.where(both_cut, budget // 2, short)
    long_kept = tf.where(both_cut, budget // 2 + budget % 2, long_kept)
    first = tf.where(swap, long_kept, short_kept)
    second = tf.where(swap, short_kept, long_kept)
    return [tf.where(over, first, n1), tf.where(over, second, n2)]


def truncate_rows(rows: tf.RaggedTensor, keep: tf.Tensor, side: str) -> tf.RaggedTensor:
    """Keep the first (side "right") or last ("left") `keep[i]` values of each row."""
    ids = row_ids(rows)
    position = positions_in_rows(rows, ids)
    if side == "right":
        return mask_values(rows, position < tf.gather(keep, ids))
    lengths = tf.cast(rows.row_lengths(), tf.int32)
    return mask_values(rows, position >= tf.gather(lengths - keep, ids))
