"""Where BPE's tokens sit in their words (offsets): each token is a run of its word's
initial symbols, counted from its entry (docs/how-it-works.md#offsets)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.spans import SpansFromTokens
from tfpipe.tokenization.ragged_ops import (
    cumsum_in_rows,
    expand,
    positions_in_rows,
    previous,
    row_ids,
)
from tfpipe.tokenization.utf8 import utf8_lengths

SECTION = "model"


class BPESpans(SpansFromTokens):
    """`spans` for the BPE model, from tables built with it (`_span_tables`)."""

    def _span_tables(self, vocab: dict[str, int], prefix: str, suffix: str, merged: set) -> None:
        """What `spans` reads: each entry's length without its affixes, and whether the ids
        it takes for one symbol (unknown, bytes) can only mean that."""
        self.prefix_length, self.suffix_length = len(prefix), len(suffix)
        self.token_lengths = np.zeros(max(vocab.values(), default=0) + 1, np.int32)
        self.token_lengths[list(vocab.values())] = [len(token) for token in vocab]
        self.one_symbol = np.zeros_like(self.token_lengths, bool)
        if self.unk_id is not None:
            self.one_symbol[self.unk_id] = True
        if self.byte_fallback:
            self.one_symbol[self.byte_ids] = True
        ambiguous = sorted(set(np.flatnonzero(self.one_symbol).tolist()) & merged)
        self.spans_unsupported = (
            f"merges build {len(ambiguous)} unknown or byte-fallback tokens" if ambiguous else None
        )

    def spans(self, words: tf.RaggedTensor, ids: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per token of `ids` (flat), its [start, stop) in its word's code points.

        A token is a run of the word's initial symbols: one per known character, one per
        byte of an unknown one (byte fallback, each spanning its character), one per unknown
        character or run of them (unknown token, fused or not), none for a dropped one. Its
        symbol count is its entry's length less the affixes its place gives it (1 for the
        unknown and byte tokens, which no merge builds), so counting symbols places it.
        """
        if self.spans_unsupported:
            raise UnsupportedComponentError(SECTION, "BPE", f"offsets: {self.spans_unsupported}")
        symbol_start, symbol_stop = self._symbol_spans(words)
        owner = row_ids(ids)
        position = positions_in_rows(ids, owner)
        count = tf.gather(self.token_lengths, ids.values)
        count -= tf.where(position > 0, self.prefix_length, 0)
        last = position == tf.gather(tf.cast(ids.row_lengths(), tf.int32) - 1, owner)
        count -= tf.where(last, self.suffix_length, 0)
        count = tf.where(tf.gather(self.one_symbol, ids.values), 1, count)
        first = cumsum_in_rows(count, ids, exclusive=True)
        symbols = symbol_start.row_starts()
        base = tf.gather(tf.cast(symbols, tf.int32), owner)
        return (
            tf.gather(symbol_start.values, base + first),
            tf.gather(symbol_stop, base + first + count - 1),
        )

    def _symbol_spans(self, words: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """The word's initial symbols: ([words, (start)], stop) in code points of the word."""
        owner = row_ids(words)
        position = positions_in_rows(words, owner)
        known = self._character_symbols(words, owner) >= 0
        if self.byte_fallback:
            per_char = tf.where(known, 1, utf8_lengths(words.values))
        elif self.unk_id is None:
            per_char = tf.cast(known, tf.int32)
        elif self.fuse_unk:
            continues = ~known & previous(~known, False) & (previous(owner, -1) == owner)
            per_char = tf.cast(~continues, tf.int32)
        else:
            per_char = tf.ones_like(position)
        stop = position + 1
        if self.unk_id is not None and self.fuse_unk and not self.byte_fallback:
            run = tf.cumsum(per_char) - 1
            run_stop = tf.math.unsorted_segment_max(stop, run, tf.reduce_sum(per_char))
            stop = tf.gather(run_stop, run)
        char, _ = expand(per_char)
        counts = tf.math.unsorted_segment_sum(per_char, owner, words.nrows(out_type=tf.int32))
        starts = tf.RaggedTensor.from_row_lengths(
            tf.gather(position, char), tf.cast(counts, tf.int64), validate=False
        )
        return starts, tf.gather(stop, char)
