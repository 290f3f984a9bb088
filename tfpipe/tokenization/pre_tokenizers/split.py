"""`Split`: pieces split on the matches of a Regex or String pattern, run in the graph by RE2.

The pattern is compiled at build time and matched in the graph (see regex.matcher); the split
behaviour is applied to the resulting gap/match segments exactly as `tokenizers` folds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, split_behaviour
from tfpipe.tokenization.ragged_ops import (
    positions_in_rows,
    previous,
    repeat_range,
    row_ids,
    select,
)
from tfpipe.tokenization.regex.matcher import Matcher, compile_matcher


@dataclass
class Split:
    """A compiled `Split` pre-tokenizer (Regex or String pattern, any behaviour, invert)."""

    matcher: Matcher
    behaviour: str
    invert: bool
    # No per-code-point class for SplitPhase's packed table: the matcher's groups replace it.
    classes = None

    @property
    def removes(self) -> bool:
        return self.behaviour == "Removed"

    @classmethod
    def from_component(cls, component: dict) -> Split:
        spec = component.get("pattern")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise UnsupportedComponentError(SECTION, "Split", f"pattern {spec!r}")
        (kind, source), = spec.items()
        matcher = compile_matcher(kind, source, SECTION, "Split")
        return cls(matcher, split_behaviour(component), bool(component.get("invert", False)))

    def apply(self, values, cls, starts, removed):
        """(code points, -, piece starts, removed flags) → (starts, removed) after the split."""
        kept_at = tf.where(~removed)
        chars = tf.gather_nd(values, kept_at)
        char_starts = tf.gather_nd(starts, kept_at)
        boundary, drop = self._split_kept(chars, char_starts)
        shape = tf.shape(starts, out_type=tf.int64)
        starts |= tf.scatter_nd(kept_at, boundary, shape)
        removed |= tf.scatter_nd(kept_at, drop, shape)
        return starts | previous(removed, False), removed

    def _split_kept(self, chars: tf.Tensor, starts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Boundaries and removals for the kept characters, grouped into pieces by `starts`."""
        size = tf.size(chars, out_type=tf.int64)
        splits = tf.concat([tf.where(starts)[:, 0], tf.reshape(size, [1])], 0)
        return self._segments_to_flags(self.matcher.segments(chars, splits), size)

    def _segments_to_flags(self, segments: tf.RaggedTensor, size: tf.Tensor):
        """Fold gap/match segments the way `tokenizers` applies a split behaviour.

        Empty gaps are dropped (the reference never produces them), empty matches are kept.
        """
        segment_piece = row_ids(segments)
        length = segments.values
        is_match = positions_in_rows(segments, segment_piece) % 2 == 1
        start = tf.cumsum(length, exclusive=True)
        kept = is_match | (length > 0)
        if self.invert:
            is_match = ~is_match
        opens = self._opens(select(is_match, kept), select(segment_piece, kept))
        boundary_at = select(select(start, kept), opens)
        boundary = tf.math.unsorted_segment_max(
            tf.ones_like(boundary_at), boundary_at, tf.cast(size, tf.int32) + 1
        )[:-1] > 0
        if self.behaviour != "Removed":
            return boundary, tf.zeros_like(boundary)
        return boundary, tf.gather(is_match, repeat_range(length))

    def _opens(self, is_match: tf.Tensor, piece: tf.Tensor) -> tf.Tensor:
        """Whether each segment starts a new word (tokenizers' split-behaviour folds)."""
        has_previous = previous(piece, -1) == piece
        previous_match = previous(is_match, False) & has_previous
        if self.behaviour == "MergedWithPrevious":
            return ~(is_match & has_previous & ~previous_match)
        if self.behaviour == "MergedWithNext":
            return ~(~is_match & previous_match)
        if self.behaviour == "Contiguous":
            return ~(has_previous & (previous_match == is_match))
        return tf.ones_like(is_match)


def compile_split(component: dict) -> list[Split]:
    return [Split.from_component(component)]
