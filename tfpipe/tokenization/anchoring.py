"""Which normalized code points still sit at offset 0 of the original text.

`Metaspace` with `prepend_scheme: first` prepends its replacement only to a piece at original
offset 0; the pipeline carries, per row, the *anchored prefix* (how many leading code points
align to offset 0) through each normalizer stage as tokenizers' `NormalizedString` aligns its
edits. The rules per stage, and what is refused:
docs/how-it-works.md#anchoring-metaspace-prepend_scheme-first.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.precompiled import Precompiled
from tfpipe.tokenization.normalizers.prepend import Prepend
from tfpipe.tokenization.normalizers.replace import Replace
from tfpipe.tokenization.normalizers.stages import CanonicalReorder, LocalMap
from tfpipe.tokenization.normalizers.strip import Strip
from tfpipe.tokenization.normalizers.unicode import Compose
from tfpipe.tokenization.ragged_ops import (
    following,
    positions_in_rows,
    row_ids,
    row_starts_mask,
    select,
)

SECTION = "pre_tokenizer"
# Stages whose anchored prefix is the stage applied to the prefix alone.
PREFIX_CLOSED = (LocalMap, CanonicalReorder, Compose, Prepend)


def check_trackable(stages: list) -> None:
    """Refuse normalizer stages whose effect on the anchored prefix is not modelled."""
    for stage in stages:
        if isinstance(stage, Precompiled) and stage.max_whole_replacement >= 3:
            raise UnsupportedComponentError(
                SECTION,
                "Metaspace",
                "prepend_scheme 'first' after a Precompiled charsmap mapping multi-character "
                "keys to three or more characters",
            )


def first_part_prefix(parts: tf.RaggedTensor, starts: tf.Tensor, anchored: tf.Tensor) -> tf.Tensor:
    """The anchored prefix of every part of split rows, from each part's code point start."""
    row_anchor = tf.gather(anchored, row_ids(parts))
    return tf.maximum(row_anchor - starts, 0)


def prefix(cps: tf.RaggedTensor, anchored: tf.Tensor) -> tf.RaggedTensor:
    """The first `anchored` code points of every row."""
    ids = row_ids(cps)
    keep = positions_in_rows(cps, ids) < tf.gather(anchored, ids)
    lengths = tf.math.unsorted_segment_sum(tf.cast(keep, tf.int64), ids, cps.nrows())
    return tf.RaggedTensor.from_row_lengths(
        select(cps.values, keep), lengths, validate=False
    )


def _lengths(rows: tf.RaggedTensor) -> tf.Tensor:
    return tf.cast(rows.row_lengths(), tf.int32)


def anchored_after(stage, cps: tf.RaggedTensor, anchored: tf.Tensor) -> tf.Tensor:
    """The anchored prefix of `stage.apply(cps)` given that of `cps` (int32 per row)."""
    if isinstance(stage, PREFIX_CLOSED):
        return _lengths(stage.apply(prefix(cps, anchored)))
    if isinstance(stage, Strip):
        # Right stripping removes nothing before the prefix; the caller caps by the row length.
        left_only = dataclasses.replace(stage, right=False)
        return _lengths(left_only.apply(prefix(cps, anchored)))
    if isinstance(stage, Replace):
        return _after_replace(stage.segments(cps), len(stage.content), anchored)
    if isinstance(stage, Precompiled):
        return _after_precompiled(stage, cps, anchored)
    raise UnsupportedComponentError(SECTION, "Metaspace", f"prepend_scheme 'first' after {stage}")


def _after_replace(parts: tf.RaggedTensor, content_length: int, anchored: tf.Tensor) -> tf.Tensor:
    """Unmatched code points keep their alignment; a match's replacement takes its last one's.

    `parts`: per row, the lengths of its gap, match, gap, … segments.
    """
    lengths = parts.values
    ids = row_ids(parts)
    total = tf.cumsum(lengths, exclusive=True)
    starts = total - tf.gather(total, tf.gather(tf.cast(parts.row_starts(), tf.int32), ids))
    limit = tf.gather(anchored, ids)
    is_match = tf.math.floormod(positions_in_rows(parts, ids), 2) == 1
    kept = tf.clip_by_value(limit - starts, 0, lengths)
    replaced = tf.where(starts + lengths - 1 < limit, content_length, 0)
    contribution = tf.where(is_match, replaced, kept)
    return tf.math.unsorted_segment_sum(contribution, ids, parts.nrows(out_type=tf.int32))


def _after_precompiled(stage: Precompiled, cps: tf.RaggedTensor, anchored: tf.Tensor) -> tf.Tensor:
    """Outputs of code points [k, k + anchored), k the leading removed ones, less the last output
    of the last of them when it has several and a removed code point follows."""
    lengths = stage.output_lengths(cps)
    ids = row_ids(cps)
    position = positions_in_rows(cps, ids)
    nrows = cps.nrows(out_type=tf.int32)
    output_before = tf.cumsum(lengths, exclusive=True)
    output_before -= tf.gather(output_before, tf.gather(tf.cast(cps.row_starts(), tf.int32), ids))
    removed_lead = tf.math.unsorted_segment_sum(
        tf.cast((output_before == 0) & (lengths == 0), tf.int32), ids, nrows
    )
    end = tf.gather(removed_lead + anchored, ids)
    counted = (position >= tf.gather(removed_lead, ids)) & (position < end)
    total = tf.math.unsorted_segment_sum(tf.where(counted, lengths, 0), ids, nrows)
    removed_next = following(lengths == 0, False) & ~following(row_starts_mask(cps), True)
    shifted = (position == end - 1) & (lengths >= 2) & removed_next
    return total - tf.math.unsorted_segment_sum(tf.cast(shifted, tf.int32), ids, nrows)


def normalize(
    stages: list, cps: tf.RaggedTensor, anchored: tf.Tensor
) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """Run normalizer stages on `cps`, tracking the anchored prefix of every row."""
    anchored = tf.minimum(anchored, _lengths(cps))
    for stage in stages:
        anchored = anchored_after(stage, cps, anchored)
        cps = stage.apply(cps)
        anchored = tf.minimum(anchored, _lengths(cps))
    return cps, anchored
