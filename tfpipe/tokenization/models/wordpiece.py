"""The WordPiece model: greedy longest-match-first, exactly as `tokenizers` does it.

Each distinct word of the batch is tokenized once: whole-word lookups first, then the greedy
loop vectorised over the unfinished words (docs/how-it-works.md#wordpiece-modelswordpiecepy).
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import one_per_row, repeat_range, rows_from_ids, select
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push
from tfpipe.tokenization.utf8 import utf8_lengths
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"


class WordPiece(tf.Module):
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
        self.vocab = string_table(vocab)
        self.longest_entry = max((len(token) for token in vocab), default=1)

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)].

        Each distinct word is tokenized once. Batches whose words are all vocabulary
        entries (or too long) skip the greedy loop and gather plain ids, not ragged rows.
        """
        strings = tf.strings.unicode_encode(words, "UTF-8")
        unique, inverse = tf.unique(strings, out_idx=tf.int32)
        whole = self.vocab.lookup(unique)
        too_long = tf.strings.length(unique, unit="UTF8_CHAR") > self.max_chars
        single = too_long | (whole >= 0)
        single_ids = tf.where(too_long, self.unk_id, whole)

        def tokenize_pending() -> tf.RaggedTensor:
            first = tf.math.unsorted_segment_min(
                tf.range(tf.size(strings)), inverse, tf.size(unique)
            )
            pending = self._tokenize_pending(unique, tf.gather(words, first), single, single_ids)
            return tf.gather(pending, inverse)

        return tf.cond(
            tf.reduce_all(single),
            lambda: one_per_row(tf.gather(single_ids, inverse)),
            tokenize_pending,
        )

    def _tokenize_pending(
        self, strings: tf.Tensor, words: tf.RaggedTensor, single: tf.Tensor, single_ids: tf.Tensor
    ) -> tf.RaggedTensor:
        num_words = tf.size(strings)
        pending = tf.cast(tf.where(~single)[:, 0], tf.int32)
        piece_word, piece_ids, failed = self._greedy(
            tf.gather(words, pending), tf.gather(strings, pending)
        )
        piece_word = tf.gather(pending, piece_word)
        failed_words = tf.gather(pending, failed)
        keep = self._not_in(piece_word, failed_words, num_words)
        word_index = tf.concat(
            [
                tf.cast(tf.where(single)[:, 0], tf.int32),
                failed_words,
                select(piece_word, keep),
            ],
            axis=0,
        )
        ids = tf.concat(
            [
                select(single_ids, single),
                tf.fill(tf.shape(failed_words), self.unk_id),
                select(piece_ids, keep),
            ],
            axis=0,
        )
        order = tf.argsort(word_index, stable=True)
        return rows_from_ids(tf.gather(ids, order), tf.gather(word_index, order), num_words)

    @staticmethod
    def _not_in(items: tf.Tensor, excluded: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        flags = tf.scatter_nd(
            tf.expand_dims(excluded, 1), tf.ones_like(excluded), tf.expand_dims(size, 0)
        )
        return tf.gather(flags, items) == 0

    def _greedy(
        self, words: tf.RaggedTensor, strings: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Greedy longest-match over words that are not vocabulary entries.

        Returns (word of each piece, piece id) in emission order — per word, left to right —
        and the words that had a position with no match.
        """
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
            first_char = word_start + tf.gather(pos, which)
            base = tf.gather(byte_offsets, word_start)
            start = tf.gather(byte_offsets, first_char) - base
            stop = tf.gather(byte_offsets, first_char + size) - base
            pieces = tf.strings.substr(tf.gather(strings, candidate_word), start, stop - start)
            prefix = tf.gather(tf.where(pos > 0, self.prefix, ""), which)
            ids = self.vocab.lookup(tf.strings.join([prefix, pieces]))
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
        return tuple(concat(handle, tf.int32) for handle in (pieces_word, pieces_id, failed))
