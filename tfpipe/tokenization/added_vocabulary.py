"""Added tokens: literal special/added tokens in the text are matched before anything else.

Mirrors `tokenizers`' AddedVocabulary: tokens with `normalized=False` are found in the raw
text, those with `normalized=True` in the normalized text of the pieces in between (matching
their normalized content). Matching is leftmost-longest and non-overlapping, as its
aho-corasick automaton does — an RE2 alternation ordered longest first gives exactly that, for
tokens of any length; among tokens of equal normalized content, special ones first — then
`single_word` discards matches touching a word character, `lstrip`/`rstrip` absorb the
whitespace around a match, and an `lstrip` whitespace token inside whitespace an `rstrip`
token before it took is dropped (its split in `tokenizers` is empty).

In the graph, matches are wrapped in 0xFF bytes (never present in valid UTF-8) and the strings
split on them, so each text becomes alternating pieces: text, token, text, …, text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.ragged_ops import (
    following,
    positions_in_rows,
    previous,
    row_ids,
    row_starts_mask,
    rows_from_ids,
    select,
)
from tfpipe.tokenization.regex.re2 import re2_class, re2_literal
from tfpipe.tokenization.vocabulary import string_table

MARK = b"\xff"


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False


class TokenMatcher(tf.Module):
    """Splits strings around one set of added tokens (raw or normalized)."""

    def __init__(
        self, tokens: list[AddedToken], word_classes: np.ndarray, whitespace: np.ndarray
    ) -> None:
        super().__init__(name="added_tokens")
        unique: dict[str, AddedToken] = {}
        for token in tokens:
            unique.setdefault(token.content, token)
        self.tokens = list(unique.values())
        by_length = sorted(self.tokens, key=lambda t: -len(t.content.encode()))
        self.pattern = "|".join(re2_literal(t.content) for t in by_length)
        self.index = string_table({t.content: i for i, t in enumerate(self.tokens)})
        self.ids = np.array([t.id for t in self.tokens], np.int32)
        self.single_word = np.array([t.single_word for t in self.tokens])
        self.lstrip = np.array([t.lstrip for t in self.tokens])
        self.rstrip = np.array([t.rstrip for t in self.tokens])
        self.blank = np.array([all(whitespace[ord(c)] for c in t.content) for t in self.tokens])
        self.word_classes = word_classes
        space = re2_class(whitespace)
        self.leading_space = f"^{space}+"
        self.trailing_space = f"{space}+$"
        self.blank_text = f"{space}*"

    def find(self, strings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(strings with every match wrapped in MARK bytes, whether any string has one)."""
        marked = tf.strings.regex_replace(strings, self.pattern, MARK + b"\\0" + MARK)
        return marked, tf.reduce_any(tf.not_equal(marked, strings))

    def split(self, marked: tf.Tensor, with_starts: bool = False):
        """Strings marked by `find` → ([n, (pieces)] strings, [n, (pieces)] token ids, -1 for
        text), plus with `with_starts` the code point offset of every piece in its string
        (flat, int32)."""
        pieces = tf.strings.split(marked, sep=MARK)
        is_token = pieces.with_values(
            tf.math.floormod(positions_in_rows(pieces), 2) == 1
        )
        index = tf.where(is_token.values, self.index.lookup(pieces.values), -1)
        if self.single_word.any():
            pieces, index = self._drop_touching_words(pieces, index)
        starts = self._starts(pieces) if with_starts else None
        absorbed = None
        if (self.blank & self.lstrip).any() and self.rstrip.any():
            absorbed = self._absorbed(pieces, index)
        if self.lstrip.any() or self.rstrip.any():
            if with_starts:
                after_rstrip, _ = self._beside_stripping(pieces, index)
                lead = pieces.values
                lead = tf.strings.length(lead, unit="UTF8_CHAR") - tf.strings.length(
                    tf.strings.regex_replace(lead, self.leading_space, ""), unit="UTF8_CHAR"
                )
                starts += tf.where(after_rstrip, lead, 0)
            pieces = self._strip_around(pieces, index)
        if absorbed is not None:
            index = tf.where(absorbed, -1, index)
            pieces = pieces.with_values(tf.where(absorbed, "", pieces.values))
        ids = tf.where(index >= 0, tf.gather(self.ids, tf.maximum(index, 0)), -1)
        ids = pieces.with_values(ids)
        return (pieces, ids, starts) if with_starts else (pieces, ids)

    @staticmethod
    def _starts(pieces: tf.RaggedTensor) -> tf.Tensor:
        """Code point offset of every piece in its row (the pieces tile the row)."""
        lengths = tf.strings.length(pieces.values, unit="UTF8_CHAR")
        before = tf.cumsum(lengths, exclusive=True)
        first = tf.gather(tf.cast(pieces.row_starts(), tf.int32), row_ids(pieces))
        return before - tf.gather(before, first)

    def _flag(self, flags: np.ndarray, index: tf.Tensor, default: bool = False) -> tf.Tensor:
        return tf.where(index >= 0, tf.gather(flags, tf.maximum(index, 0)), default)

    def _edge_is_word(self, strings: tf.Tensor, position: int) -> tf.Tensor:
        """Whether the first (0) or last (-1) character of each string is a word character.

        Empty strings have no such character (and `Substr` rejects position -1 on them).
        """
        nonempty = tf.strings.length(strings) > 0
        padded = tf.where(nonempty, strings, " ")
        char = tf.strings.substr(padded, position, 1, unit="UTF8_CHAR")
        cps = tf.strings.unicode_decode(char, "UTF-8").to_tensor(-1, shape=[None, 1])[:, 0]
        word = tf.gather(self.word_classes == 0, tf.maximum(cps, 0))
        return nonempty & (cps >= 0) & word

    def _drop_touching_words(self, pieces: tf.RaggedTensor, index: tf.Tensor):
        """Turn single_word matches with a word character beside them back into text."""
        text = pieces.values
        nonempty = tf.strings.length(text) > 0
        starts = row_starts_mask(pieces)
        ends = following(starts, True)
        last_word = nonempty & self._edge_is_word(text, -1)
        first_word = nonempty & self._edge_is_word(text, 0)
        # The character before a match ends the gap before it or, when that gap is empty,
        # the match before that gap; none at the start of the text (same on the right).
        gap_before_empty = previous(~nonempty, False)
        word_before = ~starts & tf.where(
            gap_before_empty,
            previous(previous(last_word, False), False) & ~previous(starts, True),
            previous(last_word, False),
        )
        gap_after_empty = following(~nonempty, False)
        word_after = ~ends & tf.where(
            gap_after_empty,
            following(following(first_word, False), False) & ~following(ends, True),
            following(first_word, False),
        )
        discard = self._flag(self.single_word, index) & (word_before | word_after)
        index = tf.where(discard, -1, index)
        kept = index >= 0
        new_piece = starts | kept | (previous(kept, False) & ~starts)
        segment = tf.cumsum(tf.cast(new_piece, tf.int32)) - 1
        joined = tf.strings.unsorted_segment_join(
            text, segment, tf.reduce_sum(tf.cast(new_piece, tf.int32))
        )
        row_of_segment = tf.cast(select(row_ids(pieces), new_piece), tf.int64)
        merged = rows_from_ids(joined, row_of_segment, pieces.nrows())
        return merged, select(index, new_piece)

    def _absorbed(self, pieces: tf.RaggedTensor, index: tf.Tensor) -> tf.Tensor:
        """Matches `tokenizers` drops: an lstrip token of whitespace lying in the whitespace an
        rstrip token before it already took. Its split starts where that rstrip ended, which
        is its own end, and empty splits are dropped.

        Within a stretch of whitespace text and such tokens after a token N, a match lies in
        taken whitespace when N, or an earlier such token (one that was kept), has rstrip.
        """
        is_token = index >= 0
        blank = tf.where(
            is_token,
            self._flag(self.blank, index),
            tf.strings.regex_full_match(pieces.values, self.blank_text),
        )
        inside = is_token & blank & self._flag(self.lstrip, index)
        opens = row_starts_mask(pieces) | ~(inside | (~is_token & blank))
        rstrip = self._flag(self.rstrip, index)
        opener = tf.gather(tf.where(opens)[:, 0], tf.cumsum(tf.cast(opens, tf.int32)) - 1)
        taken = tf.cumsum(tf.cast(inside & rstrip, tf.int32), exclusive=True)
        taken_before = taken > tf.gather(taken, opener)
        return inside & (tf.gather(rstrip, opener) | taken_before)

    def _beside_stripping(self, pieces: tf.RaggedTensor, index: tf.Tensor):
        """(pieces right after an rstrip token, pieces right before an lstrip token)."""
        starts = row_starts_mask(pieces)
        ends = following(starts, True)
        after_rstrip = previous(self._flag(self.rstrip, index), False) & ~starts
        before_lstrip = following(self._flag(self.lstrip, index), False) & ~ends
        return after_rstrip, before_lstrip

    def _strip_around(self, pieces: tf.RaggedTensor, index: tf.Tensor) -> tf.RaggedTensor:
        """Remove the whitespace that lstrip/rstrip tokens absorb from the text beside them."""
        text = pieces.values
        after_rstrip, before_lstrip = self._beside_stripping(pieces, index)
        text = tf.where(after_rstrip, tf.strings.regex_replace(text, self.leading_space, ""), text)
        text = tf.where(
            before_lstrip, tf.strings.regex_replace(text, self.trailing_space, ""), text
        )
        return pieces.with_values(text)
