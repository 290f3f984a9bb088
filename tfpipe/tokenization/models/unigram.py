"""The Unigram model: the best-scoring segmentation, exactly as `tokenizers` finds it.

`tokenizers` (Unigram::encode_optimized) runs a Viterbi pass over the word's characters: the
best path ending at each position is the best over every vocabulary piece ending there of
(best path at the piece's start + piece score), in f64, a candidate replacing the current
best only when strictly greater — so on ties the piece starting earliest (the longest) wins.
A character starting no single-character piece also gets an unknown candidate of score
`min_score - 10` (kUnkPenalty). Backtracking then fuses consecutive unknown-id nodes into
one piece (Unigram always fuses unknowns); a fused piece that is not a vocabulary entry is the
unknown id, or its UTF-8 bytes' `<0xXX>` tokens with `byte_fallback`.

In the graph each distinct word is segmented once. Words are sorted longest first so that the
words still running at position e are a prefix of that order; the loop over end positions
keeps the best scores of the last `longest piece` positions as a [window, words] matrix and
records each position's chosen piece length and id; a second loop walks those back.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.bpe import utf8_byte
from tfpipe.tokenization.models.wordpiece import utf8_lengths
from tfpipe.tokenization.ragged_ops import previous, repeat_range
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"
UNK_PENALTY = 10.0


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
        self.vocab = string_table(ids)
        scores = np.array([score for _, score in pieces], np.float64)
        self.scores = tf.constant(scores, tf.float64)
        self.unk_score = float(scores.min()) - UNK_PENALTY
        self.longest_piece = max(len(token) for token, _ in pieces)
        self.byte_fallback = bool(component.get("byte_fallback", False))
        self.byte_ids = np.array([ids.get(f"<0x{b:02X}>", -1) for b in range(256)], np.int32)
        if self.byte_fallback and (self.byte_ids < 0).any():
            raise UnsupportedComponentError(
                SECTION, "Unigram", "byte_fallback needs all 256 <0xXX> tokens"
            )

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)]."""
        strings = tf.strings.unicode_encode(words, "UTF-8")
        unique, inverse = tf.unique(strings, out_idx=tf.int32)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(strings)), inverse, tf.size(unique))
        return tf.gather(self._tokenize(unique, tf.gather(words, first)), inverse)

    def _tokenize(self, strings: tf.Tensor, words: tf.RaggedTensor) -> tf.RaggedTensor:
        lengths = tf.cast(words.row_lengths(), tf.int32)
        order = tf.argsort(lengths, direction="DESCENDING", stable=True)
        sorted_words = tf.gather(words, order)
        sorted_strings = tf.gather(strings, order)
        sorted_lengths = tf.gather(lengths, order)
        piece_length, piece_id, step_offsets = self._viterbi(sorted_words, sorted_strings)
        word, start, stop, ids = self._backtrack(
            sorted_lengths, piece_length, piece_id, step_offsets
        )
        word, start, stop, ids = self._fuse_unknown(word, start, stop, ids)
        ids_word = tf.gather(order, word)
        if self.byte_fallback:
            ids, ids_word = self._bytes_for_unknown(
                sorted_words, sorted_strings, word, start, stop, ids, ids_word
            )
        by_word = tf.argsort(ids_word, stable=True)
        return tf.RaggedTensor.from_value_rowids(
            tf.gather(ids, by_word),
            tf.cast(tf.gather(ids_word, by_word), tf.int64),
            nrows=tf.cast(tf.size(strings), tf.int64),
            validate=False,
        )

    def _viterbi(self, words: tf.RaggedTensor, strings: tf.Tensor):
        """Best piece ending at every position of every word (words sorted longest first).

        Returns the chosen piece length and id per (end position, word), flat in order of end
        position then word, and where each end position's entries start in that order.
        """
        window = self.longest_piece
        lengths = tf.cast(words.row_lengths(), tf.int32)
        char_starts = tf.cast(words.row_starts(), tf.int32)
        byte_offsets = tf.concat([[0], tf.cumsum(utf8_lengths(words.values))], axis=0)
        longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
        # Number of words at least e characters long, for e = 0 … longest.
        per_length = tf.math.bincount(lengths, minlength=longest + 1, maxlength=longest + 1)
        running = tf.cumsum(per_length, reverse=True)

        # All words in one string: candidate pieces are cut from it by byte offsets, so no
        # step copies whole words.
        joined = tf.strings.reduce_join(strings)

        def step(end, best, lengths_out, ids_out):
            count = running[end]
            # Pieces cannot start before the word: the first positions need fewer candidates.
            sizes = tf.range(1, tf.minimum(window, end) + 1)
            candidates = tf.size(sizes)
            best = best[:, :count]
            word_start = tf.expand_dims(char_starts[:count], 1)
            start = tf.expand_dims(end - sizes, 0)
            begin = tf.gather(byte_offsets, word_start + start)
            finish = tf.gather(byte_offsets, word_start + end)
            listed = self.vocab.lookup(tf.strings.substr(joined, begin, finish - begin))
            ids, scores, usable = self._candidates(listed)
            candidate = tf.where(
                usable, tf.transpose(best[:candidates]) + scores, tf.constant(-np.inf, tf.float64)
            )
            top = tf.reduce_max(candidate, axis=1, keepdims=True)
            # Ties go to the longest piece (the earliest start, first seen by the reference).
            chosen = tf.reduce_max(tf.where(usable & (candidate == top), sizes, 0), axis=1)
            best = tf.concat([tf.transpose(top), best[:-1]], 0)
            return (
                end + 1,
                best,
                push(lengths_out, chosen),
                push(ids_out, tf.gather(ids, chosen - 1, batch_dims=1)),
            )

        initial = tf.zeros([window, running[0]], tf.float64)
        _, _, lengths_out, ids_out = tf.while_loop(
            lambda end, *_: end <= longest,
            step,
            (tf.constant(1), initial, empty_list(tf.int32), empty_list(tf.int32)),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([window, None]),
                HANDLE_SHAPE,
                HANDLE_SHAPE,
            ),
        )
        step_offsets = tf.cumsum(running[1:], exclusive=True)
        return concat(lengths_out, tf.int32), concat(ids_out, tf.int32), step_offsets

    def _candidates(self, listed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[words, sizes] vocabulary ids (-1 when not listed) → (ids, f64 scores, usable).

        A single character that is not listed is the unknown candidate instead.
        """
        unknown = listed[:, :1] < 0
        is_single = tf.equal(tf.range(tf.shape(listed)[1]), 0)
        unknown_single = unknown & is_single
        ids = tf.where(unknown_single, self.unk_id, listed)
        scores = tf.where(
            unknown_single,
            tf.constant(self.unk_score, tf.float64),
            tf.gather(self.scores, tf.maximum(ids, 0)),
        )
        return ids, scores, (listed >= 0) | unknown_single

    @staticmethod
    def _backtrack(lengths, piece_length, piece_id, step_offsets):
        """Walk the chosen pieces back from each word's end.

        Returns (word, start, stop, id) per piece, pieces of a word in reverse order.
        """

        def step(word, end, words_out, starts_out, stops_out, ids_out):
            at = tf.gather(step_offsets, end - 1) + word
            size = tf.gather(piece_length, at)
            start = end - size
            words_out = push(words_out, word)
            starts_out = push(starts_out, start)
            stops_out = push(stops_out, end)
            ids_out = push(ids_out, tf.gather(piece_id, at))
            going = start > 0
            return (
                tf.boolean_mask(word, going),
                tf.boolean_mask(start, going),
                words_out,
                starts_out,
                stops_out,
                ids_out,
            )

        nonempty = lengths > 0
        word = tf.cast(tf.where(nonempty)[:, 0], tf.int32)
        _, _, words_out, starts_out, stops_out, ids_out = tf.while_loop(
            lambda word, *_: tf.size(word) > 0,
            step,
            (word, tf.boolean_mask(lengths, nonempty), *(empty_list(tf.int32) for _ in range(4))),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), *[HANDLE_SHAPE] * 4),
        )
        word, start, stop, ids = (
            concat(handle, tf.int32) for handle in (words_out, starts_out, stops_out, ids_out)
        )
        # Put each word's pieces in text order: by word, then start.
        order = tf.argsort(tf.cast(word, tf.int64) * (2**31) + tf.cast(start, tf.int64))
        return tuple(tf.gather(t, order) for t in (word, start, stop, ids))

    def _fuse_unknown(self, word, start, stop, ids):
        """Merge runs of unknown-id pieces of a word into one piece (the reference's fuse_unk)."""
        unknown = ids == self.unk_id
        continues = unknown & previous(unknown, False) & (previous(word, -1) == word)
        keep = ~continues
        run = tf.cumsum(tf.cast(keep, tf.int32)) - 1
        run_stop = tf.math.unsorted_segment_max(stop, run, tf.reduce_sum(tf.cast(keep, tf.int32)))
        return (
            tf.boolean_mask(word, keep),
            tf.boolean_mask(start, keep),
            run_stop,
            tf.boolean_mask(ids, keep),
        )

    def _bytes_for_unknown(self, words, strings, word, start, stop, ids, ids_word):
        """Unknown pieces that are not vocabulary entries → the tokens of their UTF-8 bytes."""
        char_starts = tf.cast(tf.gather(words.row_starts(), word), tf.int32)
        byte_offsets = tf.concat([[0], tf.cumsum(utf8_lengths(words.values))], axis=0)
        base = tf.gather(byte_offsets, char_starts)
        begin = tf.gather(byte_offsets, char_starts + start) - base
        finish = tf.gather(byte_offsets, char_starts + stop) - base
        text = tf.strings.substr(tf.gather(strings, word), begin, finish - begin)
        expand = (ids == self.unk_id) & (self.vocab.lookup(text) < 0)
        piece, within = _expand(tf.where(expand, stop - start, 1))
        cps = tf.gather(words.values, tf.gather(char_starts + start, piece) + within)
        expand_char = tf.gather(expand, piece)
        length = tf.where(expand_char, utf8_lengths(cps), 1)
        char, byte_index = _expand(length)
        byte = utf8_byte(tf.gather(cps, char), tf.gather(length, char), byte_index)
        owner = tf.gather(piece, char)
        out = tf.where(
            tf.gather(expand_char, char),
            tf.gather(self.byte_ids, tf.clip_by_value(byte, 0, 255)),
            tf.gather(ids, owner),
        )
        return out, tf.gather(ids_word, owner)


def _expand(counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(source, index within source) for each item expanded `counts` times."""
    source = repeat_range(counts)
    within = tf.range(tf.size(source)) - tf.gather(tf.cumsum(counts, exclusive=True), source)
    return source, within

