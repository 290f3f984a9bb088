"""The WordPiece model: greedy longest-match-first, exactly as `tokenizers` does it.

Each distinct word of the batch is tokenized once: whole-word lookups first, then every
position's longest match at once and the greedy walk marked by pointer doubling
(docs/how-it-works.md#wordpiece-modelswordpiecepy).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS, BlockTable
from tfpipe.tokenization.control_flow import functional_cond
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.spans import SpansFromTokens
from tfpipe.tokenization.pointer_doubling import reached
from tfpipe.tokenization.ragged_ops import (
    cumsum_in_rows,
    one_per_row,
    positions_in_rows,
    repeat_range,
    row_ids,
    rows_from_ids,
    select,
)
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push
from tfpipe.tokenization.utf8 import utf8_lengths
from tfpipe.tokenization.vocabulary import static_table

SECTION = "model"
# Marks a candidate that starts its word: never valid UTF-8, so no continuation key starts
# with it (see `piece_table`).
WORD_START = b"\xff"
# Most longest-match candidates (substrings looked up) done at once; beyond, one step per piece.
MAX_CANDIDATES = 1 << 20


def _longest_entries(vocab: dict[str, int], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Per code point: the longest entry starting with it, and the longest continuation
    (after the prefix), in characters: no longer candidate can match."""
    initial = np.zeros(NUM_CODEPOINTS, np.int32)
    continuing = np.zeros(NUM_CODEPOINTS, np.int32)
    for token in filter(None, vocab):
        initial[ord(token[0])] = max(initial[ord(token[0])], len(token))
        piece = token[len(prefix) :]
        if token.startswith(prefix) and piece:
            continuing[ord(piece[0])] = max(continuing[ord(piece[0])], len(piece))
    return initial, continuing


def piece_table(vocab: dict[str, int], prefix: str) -> tf.lookup.StaticHashTable:
    """Substring → id: an entry after `WORD_START` where a word starts (whole words too), and
    a continuation entry without its prefix elsewhere. One lookup then serves both kinds of
    candidate, and no string is built to add the prefix."""
    keys = [WORD_START + token.encode() for token in vocab]
    values = list(vocab.values())
    for token, index in vocab.items():
        if token.startswith(prefix) and len(token) > len(prefix):
            keys.append(token[len(prefix) :].encode())
            values.append(index)
    return static_table(keys, values, tf.string, tf.int32, -1)


class WordPiece(tf.Module, SpansFromTokens):
    """The compiled `model` section of type WordPiece."""

    def __init__(self, component: dict) -> None:
        super().__init__(name="wordpiece")
        vocab: dict[str, int] = component["vocab"]
        unk_token = component.get("unk_token", "[UNK]")
        if unk_token not in vocab:
            raise UnsupportedComponentError(
                SECTION, "WordPiece", f"unk_token {unk_token!r} is not in the vocabulary"
            )
        self.unk_id = vocab[unk_token]
        self.prefix = component.get("continuing_subword_prefix", "##")
        self.max_chars = int(component.get("max_input_chars_per_word", 100))
        self.pieces = piece_table(vocab, self.prefix)
        self.longest = BlockTable.from_dense(*_longest_entries(vocab, self.prefix))
        self.longest_entry = max((len(token) for token in vocab), default=1)
        self.token_lengths = np.zeros(max(vocab.values(), default=0) + 1, np.int32)
        self.token_lengths[list(vocab.values())] = [len(token) for token in vocab]

    def spans(self, words: tf.RaggedTensor, ids: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per token of `ids` (flat), its [start, stop) in its word's code points: a word of one
        token is all that token's (an unknown word's too); the others are their entries, less
        the prefix after the first."""
        owner = row_ids(ids)
        length = tf.gather(self.token_lengths, ids.values)
        length -= tf.where(positions_in_rows(ids, owner) > 0, len(self.prefix), 0)
        single = tf.gather(ids.row_lengths() == 1, owner)
        length = tf.where(single, tf.gather(tf.cast(words.row_lengths(), tf.int32), owner), length)
        stop = cumsum_in_rows(length, ids)
        return stop - length, stop

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)].

        Each distinct word is tokenized once. Batches whose words are all vocabulary
        entries (or too long) skip the greedy walk and gather plain ids, not ragged rows.
        """
        strings = tf.strings.unicode_encode(words, "UTF-8")
        unique, inverse = tf.unique(strings, out_idx=tf.int32)
        marked = tf.strings.join([WORD_START, unique])
        whole = self.pieces.lookup(marked)
        too_long = tf.strings.length(unique, unit="UTF8_CHAR") > self.max_chars
        single = too_long | (whole >= 0)
        single_ids = tf.where(too_long, self.unk_id, whole)

        def tokenize_pending() -> tf.RaggedTensor:
            first = tf.math.unsorted_segment_min(
                tf.range(tf.size(strings)), inverse, tf.size(unique)
            )
            pending = self._tokenize_pending(marked, tf.gather(words, first), single, single_ids)
            return tf.gather(pending, inverse)

        return functional_cond(
            tf.reduce_all(single),
            lambda: one_per_row(tf.gather(single_ids, inverse)),
            tokenize_pending,
        )

    def _tokenize_pending(
        self, marked: tf.Tensor, words: tf.RaggedTensor, single: tf.Tensor, single_ids: tf.Tensor
    ) -> tf.RaggedTensor:
        num_words = tf.size(marked)
        pending = tf.cast(tf.where(~single)[:, 0], tf.int32)
        piece_word, piece_ids, failed = self._greedy(
            tf.gather(words, pending), tf.gather(marked, pending)
        )
        piece_word = tf.gather(pending, piece_word)
        failed_words = tf.gather(pending, failed)
        word_index = tf.concat(
            [tf.cast(tf.where(single)[:, 0], tf.int32), failed_words, piece_word], axis=0
        )
        ids = tf.concat(
            [select(single_ids, single), tf.fill(tf.shape(failed_words), self.unk_id), piece_ids],
            axis=0,
        )
        order = tf.argsort(word_index, stable=True)
        return rows_from_ids(tf.gather(ids, order), tf.gather(word_index, order), num_words)

    def _greedy(
        self, words: tf.RaggedTensor, marked: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Greedy longest-match over words that are not vocabulary entries (`marked`: their
        UTF-8 after `WORD_START`).

        Returns (word of each piece, piece id) in emission order — per word, left to right —
        for the words that tokenize, and the words that had a position with no match. Batches
        whose candidates are few enough are done at once, others one piece at a time.
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        owner = row_ids(words)
        position = positions_in_rows(words, owner)
        initial, continuing = self.longest.lookup(words.values)
        longest_entry = tf.where(position > 0, continuing, initial)
        count = tf.minimum(tf.gather(lengths, owner) - position, longest_entry)
        return tf.cond(
            tf.reduce_sum(tf.cast(count, tf.int64)) <= MAX_CANDIDATES,
            lambda: self._greedy_at_once(words, marked, lengths, owner, position, count),
            lambda: self._greedy_stepwise(words, marked),
        )

    def _greedy_at_once(self, words, marked, lengths, owner, position, count):
        """`_greedy` with every character's longest match looked up at once (`count`
        candidates each), then each word's walk marked by pointer doubling."""
        longest, chosen = self._longest_matches(words, marked, owner, position, count)
        on_path = self._on_greedy_path(longest, lengths, owner, position)
        no_match = tf.math.unsorted_segment_max(
            tf.cast(on_path & (longest == 0), tf.int32), owner, tf.size(lengths)
        )
        failed = (no_match > 0) | (lengths == 0)
        emitted = on_path & ~tf.gather(failed, owner)
        failed_words = tf.cast(tf.where(failed)[:, 0], tf.int32)
        return select(owner, emitted), select(chosen, emitted), failed_words

    def _longest_matches(self, words, marked, owner, position, count):
        """Per character: the length of the longest vocabulary entry starting there (0: none;
        continuations looked up without the prefix, see `piece_table`) and that entry's id."""
        first_candidate = tf.cumsum(count, exclusive=True)
        which = repeat_range(count)
        size = tf.range(tf.size(which)) - tf.gather(first_candidate, which) + 1
        # Byte offsets in the words' concatenation, each word after a WORD_START byte: where
        # every character starts (its word's WORD_START with it at a word's start) and ends.
        char_bytes = utf8_lengths(words.values)
        char_ends = tf.cumsum(char_bytes) + owner + 1
        char_starts = char_ends - char_bytes - tf.cast(position == 0, tf.int32)
        start = tf.gather(char_starts, which)
        stop = tf.gather(char_ends, which + size - 1)
        joined = tf.strings.reduce_join(marked)
        ids = self.pieces.lookup(tf.strings.substr(joined, start, stop - start))
        fit = tf.where(ids >= 0, size, 0)
        longest = tf.maximum(tf.math.unsorted_segment_max(fit, which, tf.size(count)), 0)
        # The longest match's id; a character without one reads the -1 appended to ids.
        at = tf.where(longest > 0, first_candidate + longest - 1, tf.size(ids))
        return longest, tf.gather(tf.concat([ids, [-1]], 0), at)

    @staticmethod
    def _on_greedy_path(longest, lengths, owner, position) -> tf.Tensor:
        """Whether the greedy walk of its word visits each character: from a word's first
        character it jumps `longest` ahead, to the end (a shared final node) or to where no
        entry matches (a node of its own)."""
        count = tf.size(longest)
        index = tf.range(count)
        ends_word = position + longest >= tf.gather(lengths, owner)
        jump = tf.where(longest == 0, index, tf.where(ends_word, count, index + longest))
        start = tf.cast(tf.equal(position, 0), tf.int32)
        return reached(tf.concat([start, [0]], 0), tf.concat([jump, [count]], 0))[:-1]

    def _greedy_stepwise(
        self, words: tf.RaggedTensor, marked: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`_greedy` one piece per word at a time: memory for the longest match candidates
        of one position per word, however long the batch."""
        lengths = tf.cast(words.row_lengths(), tf.int32)
        char_starts = tf.cast(words.row_starts(), tf.int32)
        # Byte offset of every character (flat over all words) in the words' concatenation.
        byte_offsets = tf.concat([[0], tf.cumsum(utf8_lengths(words.values))], axis=0)

        def step(word, pos, pieces_word, pieces_id, failed):
            remaining = tf.gather(lengths, word) - pos
            counts = tf.minimum(remaining, self.longest_entry)
            which = repeat_range(counts)
            first_candidate = tf.gather(tf.cumsum(counts, exclusive=True), which)
            size = tf.range(tf.size(which)) - first_candidate + 1
            candidate_word = tf.gather(word, which)
            word_start = tf.gather(char_starts, candidate_word)
            candidate_pos = tf.gather(pos, which)
            first_char = word_start + candidate_pos
            # Offsets in the word after its WORD_START byte, which a word's start keeps.
            base = tf.gather(byte_offsets, word_start) - 1
            start = tf.gather(byte_offsets, first_char) - base
            start -= tf.cast(candidate_pos == 0, tf.int32)
            stop = tf.gather(byte_offsets, first_char + size) - base
            pieces = tf.strings.substr(tf.gather(marked, candidate_word), start, stop - start)
            ids = self.pieces.lookup(pieces)
            fit = tf.where(ids >= 0, size, 0)
            best = tf.maximum(tf.math.unsorted_segment_max(fit, which, tf.size(word)), 0)
            chosen = tf.math.unsorted_segment_max(
                tf.where((fit > 0) & (size == tf.gather(best, which)), ids, -1),
                which,
                tf.size(word),
            )
            found = best > 0
            pieces_word = push(pieces_word, select(word, found))
            pieces_id = push(pieces_id, select(chosen, found))
            failed = push(failed, select(word, ~found))
            pos = pos + best
            going = found & (pos < tf.gather(lengths, word))
            return (
                select(word, going),
                select(pos, going),
                pieces_word,
                pieces_id,
                failed,
            )

        def array() -> tf.Tensor:
            return empty_list(tf.int32)

        word = tf.range(tf.size(lengths))
        _, _, pieces_word, pieces_id, failed = tf.while_loop(
            lambda word, *_: tf.size(word) > 0,
            step,
            (word, tf.zeros_like(word), array(), array(), array()),
            shape_invariants=(
                tf.TensorShape([None]),
                tf.TensorShape([None]),
                HANDLE_SHAPE,
                HANDLE_SHAPE,
                HANDLE_SHAPE,
            ),
        )
        pieces_word, pieces_id, failed = (
            concat(handle, tf.int32) for handle in (pieces_word, pieces_id, failed)
        )
        # Pieces a word emitted before a position without a match are not kept.
        not_failed = tf.scatter_nd(
            tf.expand_dims(failed, 1), tf.ones_like(failed), tf.shape(lengths)
        ) == 0
        kept = tf.gather(not_failed, pieces_word)
        return select(pieces_word, kept), select(pieces_id, kept), failed
