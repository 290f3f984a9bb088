"""`Replace`: every non-overlapping occurrence of a pattern, left to right, by `content`.

A one-character `String` pattern compiles to a `LocalMap` (see stages). Longer `String`
patterns and `Regex` patterns (Oniguruma, like Split's) are matched in the graph by the shared
regex machinery (see regex): each row's gap and match segments, gaps kept as they are and each
match, empty ones included, replaced by `content`. `content` is literal, as in `tokenizers`:
`$1` or `\\0` in it are plain characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.stages import Stage, local_map
from tfpipe.tokenization.ragged_ops import expand_values, positions_in_rows, row_ids
from tfpipe.tokenization.regex.matcher import Matcher, compile_matcher

SECTION = "normalizer"


@dataclass
class Replace:
    """A multi-character `String` or a `Regex` pattern's matches replaced by `content`."""

    matcher: Matcher
    content: str

    def segments(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        """Per row, the lengths of its gap, match, gap, … segments (see regex.matcher)."""
        return self.matcher.segments(cps.values, cps.row_splits)

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        return self._replaced(cps)[0]

    def apply_aligned(self, cps, alignment):
        """Kept code points keep their alignment; a match's replacement takes that of the
        match's last code point (of the one before an empty match; [0, 0] at a row's start)."""
        rows, kept_at, match_last, from_content = self._replaced(cps)
        row_start = tf.gather(tf.cast(cps.row_starts(), tf.int32), row_ids(rows))
        source = tf.where(from_content, match_last, kept_at)
        aligned = tf.gather(alignment, tf.maximum(source, 0))
        return rows, tf.where((source >= row_start)[:, tf.newaxis], aligned, 0)

    def _replaced(self, cps: tf.RaggedTensor):
        """(the rows replaced; per output: the input code point it keeps, the last code point
        of the match it replaces, whether it is replacement content)."""
        segments = self.segments(cps)
        lengths = segments.values
        is_match = positions_in_rows(segments) % 2 == 1
        content = np.array([ord(c) for c in self.content] + [0], np.int32)
        counts = tf.where(is_match, len(self.content), lengths)
        source, within, splits = expand_values(counts, tf.cast(segments.row_splits, tf.int32))
        from_content = tf.gather(is_match, source)
        # Padded by one value so that the index not taken is valid on empty input too.
        first = tf.cumsum(lengths, exclusive=True)
        kept_at = tf.where(from_content, tf.size(cps.values), tf.gather(first, source) + within)
        kept = tf.gather(tf.concat([cps.values, tf.zeros([1], cps.values.dtype)], 0), kept_at)
        replaced = tf.gather(content, tf.where(from_content, within, len(self.content)))
        values = tf.where(from_content, tf.cast(replaced, cps.values.dtype), kept)
        rows = tf.RaggedTensor.from_row_splits(
            values, tf.cast(splits, cps.row_splits.dtype), validate=False
        )
        match_last = tf.gather(first + lengths, source) - 1
        return rows, kept_at, match_last, from_content


def compile_replace(component: dict) -> list[Stage]:
    """A one-character `String` as a local map, other patterns as a `Replace` stage."""
    pattern = component.get("pattern", {})
    if not isinstance(pattern, dict) or len(pattern) != 1:
        raise UnsupportedComponentError(SECTION, "Replace", f"pattern {pattern!r}")
    ((kind, source),) = pattern.items()
    if kind == "String" and isinstance(source, str) and len(source) == 1:
        return local_map(component)
    content = component.get("content", "")
    if not isinstance(content, str):
        raise UnsupportedComponentError(SECTION, "Replace", f"content {content!r}")
    return [Replace(compile_matcher(kind, source, SECTION, "Replace"), content)]
