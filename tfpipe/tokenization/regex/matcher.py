"""A compiled pattern matched in the graph: the gap and match segments of every piece.

Each character becomes its group's representative (see re2), the look-ahead sentinel is
inserted where needed, RE2's global replace brackets every leftmost non-overlapping match with
markers, and the characters between markers are counted: per piece, alternating gap and match
lengths, a gap first. RE2's global replace and `tokenizers`' Oniguruma search take the same
matches, empty ones included: both skip an empty match where the previous match ended and
search again one character later. `Split` and `Replace` fold these segments into their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import BlockTable
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import expand_values, following, repeat_range
from tfpipe.tokenization.regex.parser import PatternError, PatternParser, literal_tree
from tfpipe.tokenization.regex.re2 import (
    FIRST_REPRESENTATIVE,
    MATCH_END,
    MATCH_START,
    SENTINEL,
    compile_pattern,
)


@dataclass
class Matcher:
    """A pattern as RE2 over group representatives, with the tables the graph needs."""

    re2: str
    groups: BlockTable
    representatives: np.ndarray
    sentinel_after: np.ndarray | None

    def segments(self, chars: tf.Tensor, splits: tf.Tensor) -> tf.RaggedTensor:
        """Per piece (`splits` over `chars`), the int32 lengths of its gap, match, gap, … segments.

        Every piece has an odd number of segments; empty gaps are kept, so segment k of a piece
        is a match exactly when k is odd.
        """
        marks = self._marked(chars, splits)
        values = marks.values
        element_piece = repeat_range(marks.row_lengths())
        # `tokenizers` finds no match, not even an empty one, in an empty piece.
        nonempty = tf.gather(splits[1:] > splits[:-1], element_piece)
        is_marker = ((values == MATCH_START) | (values == MATCH_END)) & nonempty
        markers = tf.math.unsorted_segment_sum(
            tf.cast(is_marker, tf.int32), element_piece, marks.nrows(out_type=tf.int32)
        )
        segment_of = tf.cumsum(tf.cast(is_marker, tf.int32)) + element_piece
        is_char = tf.cast(values >= FIRST_REPRESENTATIVE, tf.int32)
        lengths = tf.math.unsorted_segment_sum(is_char, segment_of, tf.reduce_sum(markers + 1))
        return tf.RaggedTensor.from_row_lengths(lengths, markers + 1, validate=False)

    def _marked(self, chars: tf.Tensor, splits: tf.Tensor) -> tf.RaggedTensor:
        """Per piece, its representatives with every match between MATCH_START and MATCH_END."""
        (group,) = self.groups.lookup(chars)
        encoded = tf.gather(self.representatives, group)
        if self.sentinel_after is not None:
            last_in_piece = following(_piece_starts(splits, tf.size(chars)), True)
            insert = following(tf.gather(self.sentinel_after, group), False) & ~last_in_piece
            source, within, splits = expand_values(1 + tf.cast(insert, tf.int32), splits)
            encoded = tf.where(within == 0, tf.gather(encoded, source), SENTINEL)
        pieces = tf.RaggedTensor.from_row_splits(encoded, splits, validate=False)
        text = tf.strings.unicode_encode(pieces, "UTF-8")
        marked = tf.strings.regex_replace(text, self.re2, "\x01\\0\x02")
        return tf.strings.unicode_decode(marked, "UTF-8")


def _piece_starts(splits: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """True at the first character of every non-empty piece."""
    starts = tf.cast(splits[:-1], tf.int32)
    return tf.math.unsorted_segment_max(tf.ones_like(starts), starts, size + 1)[:-1] > 0


def compile_matcher(kind: str, source: object, section: str, component: str) -> Matcher:
    """The matcher of a `Regex` or `String` pattern; anything that cannot run exactly is an
    UnsupportedComponentError naming the section, the component and the construct."""
    if kind not in ("Regex", "String") or not isinstance(source, str):
        raise UnsupportedComponentError(section, component, f"pattern {{{kind!r}: {source!r}}}")
    if not source:
        raise UnsupportedComponentError(section, component, "empty pattern")
    try:
        if kind == "String":
            compiled = compile_pattern(literal_tree(source), source)
        else:
            _check_reference_accepts(source)
            compiled = compile_pattern(PatternParser(source).parse(), source)
    except PatternError as error:
        raise UnsupportedComponentError(section, component, str(error)) from None
    return Matcher(
        compiled.re2,
        BlockTable.from_dense(compiled.groups),
        compiled.representatives,
        compiled.sentinel_after,
    )


def _check_reference_accepts(source: str) -> None:
    from tokenizers import Regex

    try:
        Regex(source)
    except Exception as error:
        raise PatternError(f"pattern {source!r}: tokenizers rejects it: {error}") from None
