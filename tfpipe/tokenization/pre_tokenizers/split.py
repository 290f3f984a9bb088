"""`Split`: pieces split on the matches of a Regex or String pattern, run in the graph by RE2.

The pattern is compiled at build time (see regex). In the graph each piece is encoded as a
string of group representatives, RE2 brackets the matches with markers, and the split
behaviour is applied to the resulting match/gap segments exactly as `tokenizers` folds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import BlockTable
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, split_behaviour
from tfpipe.tokenization.ragged_ops import expand_values, following, previous, repeat_range, select
from tfpipe.tokenization.reference import reference_tokenizer
from tfpipe.tokenization.regex.parser import (
    Alternation,
    Atom,
    PatternParser,
    Sequence,
    literal,
    pattern_error,
)
from tfpipe.tokenization.regex.re2 import (
    FIRST_REPRESENTATIVE,
    MATCH_END,
    MATCH_START,
    SENTINEL,
    compile_pattern,
)


@dataclass
class Split:
    """A compiled `Split` pre-tokenizer (Regex or String pattern, any behaviour, invert)."""

    pattern: str
    groups: BlockTable
    representatives: np.ndarray
    sentinel_after: np.ndarray | None
    behaviour: str
    invert: bool
    # No per-code-point class for SplitPhase's packed table: the groups above replace it.
    classes = None

    @classmethod
    def from_component(cls, component: dict) -> Split:
        spec = component.get("pattern")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise UnsupportedComponentError(SECTION, "Split", f"pattern {spec!r}")
        (kind, source), = spec.items()
        if kind not in ("Regex", "String") or not isinstance(source, str):
            raise UnsupportedComponentError(SECTION, "Split", f"pattern {spec!r}")
        if not source:
            raise UnsupportedComponentError(SECTION, "Split", "empty pattern")
        if kind == "String":
            tree = Alternation([Sequence([Atom(literal(c)) for c in source])])
        else:
            tree = PatternParser(source).parse()
        try:
            reference_tokenizer(pre_tokenizer=component)
        except Exception as error:
            raise pattern_error(source, f"tokenizers rejects it: {error}") from None
        compiled = compile_pattern(tree, source)
        return cls(
            compiled.re2,
            BlockTable.from_dense(compiled.groups),
            compiled.representatives,
            compiled.sentinel_after,
            split_behaviour(component),
            bool(component.get("invert", False)),
        )

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
        (group,) = self.groups.lookup(chars)
        encoded = tf.gather(self.representatives, group)
        if self.sentinel_after is not None:
            last_in_piece = following(starts, True)
            insert = following(tf.gather(self.sentinel_after, group), False) & ~last_in_piece
            source, within, splits = expand_values(1 + tf.cast(insert, tf.int32), splits)
            encoded = tf.where(within == 0, tf.gather(encoded, source), SENTINEL)
        pieces = tf.RaggedTensor.from_row_splits(encoded, splits, validate=False)
        text = tf.strings.unicode_encode(pieces, "UTF-8")
        marked = tf.strings.regex_replace(text, self.pattern, "\x01\\0\x02")
        decoded = tf.strings.unicode_decode(marked, "UTF-8")
        return self._segments_to_flags(decoded, size)

    def _segments_to_flags(self, decoded: tf.RaggedTensor, size: tf.Tensor):
        """Fold match/gap segments the way `tokenizers` applies a split behaviour.

        Each piece is an implicit gap segment followed by one segment per marker; empty gaps
        are dropped (the reference never produces them), empty matches are kept.
        """
        marks = decoded.values
        is_marker = (marks == MATCH_START) | (marks == MATCH_END)
        is_char = marks >= FIRST_REPRESENTATIVE
        markers_per_piece = tf.math.unsorted_segment_sum(
            tf.cast(is_marker, tf.int32), repeat_range(decoded.row_lengths()), decoded.nrows()
        )
        segment_piece = repeat_range(1 + markers_per_piece)
        element_piece = repeat_range(decoded.row_lengths())
        segment_of = tf.cumsum(tf.cast(is_marker, tf.int32)) + element_piece
        count = tf.size(segment_piece)
        is_match = tf.math.unsorted_segment_max(
            tf.cast(marks == MATCH_START, tf.int32), segment_of, count
        ) > 0
        length = tf.math.unsorted_segment_sum(tf.cast(is_char, tf.int32), segment_of, count)
        start = tf.cumsum(length, exclusive=True)
        kept = is_match | (length > 0)
        if self.invert:
            is_match = ~is_match
        opens = self._opens(select(is_match, kept), select(segment_piece, kept))
        boundary_at = select(select(start, kept), opens)
        boundary = tf.math.unsorted_segment_max(
            tf.ones_like(boundary_at), boundary_at, tf.cast(size, tf.int32) + 1
        )[:-1] > 0
        char_segment = select(segment_of, is_char)
        if self.behaviour != "Removed":
            return boundary, tf.zeros_like(boundary)
        return boundary, tf.gather(is_match, char_segment)

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
