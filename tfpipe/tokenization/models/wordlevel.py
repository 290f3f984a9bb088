"""The WordLevel model: each word is one vocabulary entry, or the unknown token."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import one_per_row
from tfpipe.tokenization.vocabulary import string_table

DEFAULT_UNK = "<unk>"  # the reference's default
# The reference's error for a word outside a vocabulary that lacks the unknown token.
MISSING_UNK = "WordLevel error: Missing [UNK] token from the vocabulary"


def fails_on_unknown_words(component: dict) -> bool:
    """Whether the reference raises on a word outside the vocabulary (no unk_token in it)."""
    return component.get("unk_token", DEFAULT_UNK) not in component["vocab"]


class WordLevel(tf.Module):
    """The compiled `model` section of type WordLevel.

    When `unk_token` is not in the vocabulary, the reference encodes texts whose words are
    all entries and raises on the others; the graph does the same (InvalidArgumentError).
    """

    def __init__(self, component: dict) -> None:
        super().__init__(name="wordlevel")
        vocab: dict[str, int] = component["vocab"]
        self.unk_id = vocab.get(component.get("unk_token", DEFAULT_UNK))
        self.vocab = string_table(vocab)

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (1 token id)]."""
        ids = self.vocab.lookup(tf.strings.unicode_encode(words, "UTF-8"))
        if self.unk_id is not None:
            return one_per_row(tf.where(ids >= 0, ids, self.unk_id))
        check = tf.debugging.Assert(tf.reduce_all(ids >= 0), [MISSING_UNK])
        with tf.control_dependencies([check]):
            return one_per_row(tf.identity(ids))

    def tokenize_with_spans(
        self, words: tf.RaggedTensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """(token ids, and per token its [start, stop) in its word: all of it)."""
        ids = self(words)
        return ids, tf.zeros_like(ids.values), tf.cast(words.row_lengths(), tf.int32)
