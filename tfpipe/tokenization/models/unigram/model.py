"""The Unigram `model` section: its vocabulary, and the passes chosen per batch of words."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.control_flow import functional_cond
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.unigram.early_stop import cut_length, settled_pieces
from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.models.unigram.long_words import LONG_WORD_CHARS, checked_pieces
from tfpipe.tokenization.models.unigram.viterbi import backtrack, viterbi
from tfpipe.tokenization.models.unigram.whole_pieces import whole_pieces
from tfpipe.tokenization.models.word_cache import WordCache
from tfpipe.tokenization.ragged_ops import (
    INT32_MAX,
    empty_rows,
    expand,
    following,
    mask_values,
    one_per_row,
    positions_in_rows,
    previous,
    replace_rows,
    row_ids,
    row_starts_mask,
    rows_from_ids,
    select,
)
from tfpipe.tokenization.utf8 import utf8_byte, utf8_lengths
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"


class Unigram(tf.Module):
    """The compiled `model` section of type Unigram."""

    def __init__(self, component: dict) -> None:
        super().__init__(name="unigram")
        pieces = [(token, float(score)) for token, score in component["vocab"]]
        if not pieces:
            raise UnsupportedComponentError(SECTION, "Unigram", "empty vocabulary")
        if any(not token for token, _ in pieces):
            raise UnsupportedComponentError(SECTION, "Unigram", "empty vocabulary piece")
        unk_id = component.get("unk_id")
        if unk_id is None:
            raise UnsupportedComponentError(SECTION, "Unigram", "no unk_id")
        self.unk_id = int(unk_id)
        if not 0 <= self.unk_id < len(pieces):
            raise UnsupportedComponentError(SECTION, "Unigram", f"unk_id {unk_id} out of range")
        # Later duplicates win, as in the reference's token → id map.
        ids = {token: index for index, (token, _) in enumerate(pieces)}
        # The lattice first: it refuses a vocabulary too large to pack, before the reference
        # segments every piece for the whole-piece list.
        scores = np.array([score for _, score in pieces], np.float64)
        self.lattice = PieceLattice(ids, scores, self.unk_id)
        self.vocab = string_table(ids)
        self.whole = string_table(whole_pieces(component, pieces, ids))
        self.cache = WordCache()
        self.byte_fallback = bool(component.get("byte_fallback", False))
        self.byte_ids = np.array([ids.get(f"<0x{b:02X}>", -1) for b in range(256)], np.int32)
        if self.byte_fallback and (self.byte_ids < 0).any():
            raise UnsupportedComponentError(
                SECTION, "Unigram", "byte_fallback needs all 256 <0xXX> tokens"
            )

    def __call__(
        self, words: tf.RaggedTensor, token_limit: int | None = None, starts: bool = False
    ) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)].

        With `token_limit`, a word may come back cut: as the exact first tokens of its
        segmentation, at least `token_limit` of them (for right truncation, which keeps no
        more; see `early_stop`). With `starts`, each value is start << 32 | id (int64), the
        start of the token's piece in its word (see `tokenize_with_spans`).
        """
        strings = tf.strings.unicode_encode(words, "UTF-8")
        whole = tf.cast(self.whole.lookup(strings), tf.int64)
        unlisted = whole < 0
        unlisted_strings = select(strings, unlisted)
        cached, found = self.cache.lookup(unlisted_strings)
        rest = ~found

        def segment_rest() -> tf.RaggedTensor:
            unlisted_words = select(words, unlisted)
            return self._segment_distinct(unlisted_strings, unlisted_words, rest, token_limit)

        segmented = functional_cond(tf.reduce_any(rest), segment_rest, lambda: empty_rows(0))
        pieces = replace_rows(cached, rest, segmented)
        packed = replace_rows(one_per_row(whole), unlisted, pieces)
        if starts:
            return packed
        ids = tf.cast(tf.bitwise.bitwise_and(packed.values, INT32_MAX), tf.int32)
        return packed.with_values(ids)

    def _segment_distinct(
        self,
        strings: tf.Tensor,
        words: tf.RaggedTensor,
        segmented: tf.Tensor,
        token_limit: int | None,
    ) -> tf.RaggedTensor:
        """Rows of the words where `segmented` holds (start << 32 | id values), each
        distinct word segmented once and kept in the cache when its row is complete.

        The distinct words are sorted longest first here, as the Viterbi pass takes them
        (`_segment`); every later selection of them keeps that order."""
        at = tf.reshape(tf.where(segmented), [-1])
        unique, inverse = tf.unique(tf.gather(strings, at), out_idx=tf.int32)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(at)), inverse, tf.size(unique))
        first_at = tf.gather(at, first)
        lengths = tf.gather(tf.cast(words.row_lengths(), tf.int32), first_at)
        order = tf.argsort(lengths, direction="DESCENDING", stable=True)
        sorted_words = tf.gather(words, tf.gather(first_at, order))
        sorted_strings = tf.gather(unique, order)
        if token_limit is None:
            ids = self._tokenize(sorted_strings, sorted_words)
            complete = tf.ones_like(order, tf.bool)
        else:
            ids = self._tokenize_within(sorted_strings, sorted_words, token_limit)
            # Words of `kept` characters or more may come back cut.
            kept = cut_length(self.lattice.longest_piece, token_limit)
            complete = tf.cast(sorted_words.row_lengths(), tf.int64) < kept
        self.cache.insert(sorted_strings, ids, complete)
        return tf.gather(ids, tf.gather(tf.math.invert_permutation(order), inverse))

    def tokenize_with_spans(
        self, words: tf.RaggedTensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """(token ids, and per token, flat, its [start, stop) in its word's code points).

        A token spans its piece: a fused unknown run, and every byte token made of one, all
        of it (as the reference's offsets). Pieces tile the word, so a piece stops where the
        next one starts, the last at the word's end.
        """
        packed = self(words, starts=True)
        values = packed.values
        ids = packed.with_values(tf.cast(tf.bitwise.bitwise_and(values, INT32_MAX), tf.int32))
        start = tf.cast(tf.bitwise.right_shift(values, 32), tf.int32)
        new_piece = row_starts_mask(packed) | (start != previous(start, -1))
        piece_start = select(start, new_piece)
        piece_word = select(row_ids(packed), new_piece)
        word_length = tf.gather(tf.cast(words.row_lengths(), tf.int32), piece_word)
        same_word = following(piece_word, -1) == piece_word
        piece_stop = tf.where(same_word, following(piece_start, 0), word_length)
        piece = tf.cumsum(tf.cast(new_piece, tf.int32)) - 1
        return ids, start, tf.gather(piece_stop, piece)

    def _tokenize_within(
        self, strings: tf.Tensor, words: tf.RaggedTensor, token_limit: int
    ) -> tf.RaggedTensor:
        """Segment words, the long ones from their first `kept` characters where that
        settles enough pieces (`early_stop`), every other word whole: one `_tokenize` for
        all of those, so the graph holds its passes once."""
        kept = cut_length(self.lattice.longest_piece, token_limit)
        if kept > INT32_MAX:
            # No word is that long.
            return self._tokenize(strings, words)
        lengths = tf.cast(words.row_lengths(), tf.int32)
        any_cut = tf.reduce_any(lengths > kept)

        def segment_cut() -> tuple:
            cut_words = mask_values(words, positions_in_rows(words) < kept)
            cut_strings = tf.strings.unicode_encode(cut_words, "UTF-8")
            ids, settled = self._segment(cut_strings, cut_words, settle=(kept, token_limit))
            return ids, ~settled, select(strings, ~settled), select(words, ~settled)

        def nothing_cut() -> tuple:
            # Every word is segmented whole: passed on as it is, not selected.
            return empty_rows(tf.size(lengths)), tf.ones_like(lengths, tf.bool), strings, words

        ids, unsettled, *selected = tf.cond(any_cut, segment_cut, nothing_cut)
        whole = self._tokenize(*selected)
        return tf.cond(any_cut, lambda: replace_rows(ids, unsettled, whole), lambda: whole)

    def _tokenize(self, strings: tf.Tensor, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """Segment every word (sorted longest first): the ones longer than
        `LONG_WORD_CHARS` from checked block passes (`long_words`), the others, and long ones
        failing the check, in one stepwise pass (its loop runs as long as the longest of
        them)."""
        long = tf.cast(words.row_lengths(), tf.int32) > LONG_WORD_CHARS
        any_long = tf.reduce_any(long)

        def check_long() -> tuple:
            long_words = select(words, long)
            pieces, checked = checked_pieces(self.lattice, long_words)
            stepwise = replace_rows(~long, long, ~checked)
            rows = self._rows(pieces, long_words, select(strings, long))
            return rows, stepwise, select(strings, stepwise), select(words, stepwise)

        def no_long() -> tuple:
            # Every word takes the stepwise pass: passed on as it is, not selected.
            return empty_rows(0), tf.ones_like(long), strings, words

        long_rows, stepwise, *selected = tf.cond(any_long, check_long, no_long)
        stepwise_rows = self._segment(*selected)

        def merged() -> tf.RaggedTensor:
            rows = replace_rows(empty_rows(tf.size(long)), long, long_rows)
            return replace_rows(rows, stepwise, stepwise_rows)

        return tf.cond(any_long, merged, lambda: stepwise_rows)

    def _segment(
        self,
        strings: tf.Tensor,
        words: tf.RaggedTensor,
        settle: tuple[int, int] | None = None,
    ):
        """Segment every word (sorted longest first) in one Viterbi pass; with `settle` =
        (kept, token_limit), words of `kept` characters or more keep their settled pieces
        only, and whether those reach the limit is returned too."""
        lengths = tf.cast(words.row_lengths(), tf.int32)
        piece_length, piece_id, step_offsets = viterbi(self.lattice, words)
        word, start, stop, ids = backtrack(lengths, piece_length, piece_id, step_offsets)
        if settle is not None:
            settled, keep = settled_pieces(
                self.lattice, lengths, piece_length, step_offsets, word, stop, ids, *settle
            )
            word, start, stop, ids = (select(t, keep) for t in (word, start, stop, ids))
        rows = self._rows((word, start, stop, ids), words, strings)
        return rows if settle is None else (rows, settled)

    def _rows(self, pieces: tuple, words: tf.RaggedTensor, strings: tf.Tensor) -> tf.RaggedTensor:
        """Pieces (word, start, stop, id) of `words`, in text order → [words, (start << 32 |
        id)]: unknown runs fused (and turned into bytes with byte_fallback)."""
        word, start, stop, ids = self._fuse_unknown(*pieces)
        if self.byte_fallback:
            ids, owner = self._bytes_for_unknown(words, strings, word, start, stop, ids)
            word, start = tf.gather(word, owner), tf.gather(start, owner)
        packed = tf.bitwise.left_shift(tf.cast(start, tf.int64), 32) | tf.cast(ids, tf.int64)
        return rows_from_ids(packed, word, words.nrows())

    def _fuse_unknown(self, word, start, stop, ids):
        """Merge runs of unknown-id pieces of a word into one piece (the reference's fuse_unk)."""
        unknown = ids == self.unk_id
        continues = unknown & previous(unknown, False) & (previous(word, -1) == word)
        keep = ~continues
        run = tf.cumsum(tf.cast(keep, tf.int32)) - 1
        run_stop = tf.math.unsorted_segment_max(stop, run, tf.reduce_sum(tf.cast(keep, tf.int32)))
        return (
            select(word, keep),
            select(start, keep),
            run_stop,
            select(ids, keep),
        )

    def _bytes_for_unknown(self, words, strings, word, start, stop, ids):
        """Unknown pieces that are not vocabulary entries → the tokens of their UTF-8 bytes."""
        char_starts = tf.cast(tf.gather(words.row_starts(), word), tf.int32)
        byte_offsets = tf.concat([[0], tf.cumsum(utf8_lengths(words.values))], axis=0)
        base = tf.gather(byte_offsets, char_starts)
        begin = tf.gather(byte_offsets, char_starts + start) - base
        finish = tf.gather(byte_offsets, char_starts + stop) - base
        text = tf.strings.substr(tf.gather(strings, word), begin, finish - begin)
        expand_piece = (ids == self.unk_id) & (self.vocab.lookup(text) < 0)
        piece, within = expand(tf.where(expand_piece, stop - start, 1))
        cps = tf.gather(words.values, tf.gather(char_starts + start, piece) + within)
        expand_char = tf.gather(expand_piece, piece)
        length = tf.where(expand_char, utf8_lengths(cps), 1)
        char, byte_index = expand(length)
        byte = utf8_byte(tf.gather(cps, char), tf.gather(length, char), byte_index)
        owner = tf.gather(piece, char)
        out = tf.where(
            tf.gather(expand_char, char),
            tf.gather(self.byte_ids, tf.clip_by_value(byte, 0, 255)),
            tf.gather(ids, owner),
        )
        return out, owner
