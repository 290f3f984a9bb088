"""Token spans for models whose tokens tell where they sit in their word (`spans`)."""

from __future__ import annotations

import tensorflow as tf


class SpansFromTokens:
    """`tokenize_with_spans` for a model that tokenizes (`__call__`) and then places its
    tokens in their words from the tokens alone (`spans`)."""

    def tokenize_with_spans(
        self, words: tf.RaggedTensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """(token ids, and per token, flat, its [start, stop) in its word's code points)."""
        ids = self(words)
        return (ids, *self.spans(words, ids))
