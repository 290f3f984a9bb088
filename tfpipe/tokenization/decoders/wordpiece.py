"""`WordPiece`: continuation tokens lose their prefix, the others follow a space."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import (
    is_first,
    replace_in_order,
    starts_with,
    without_prefix,
)

# tokenizers' wordpiece::cleanup, in its order: English tokenization artifacts undone.
CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


class WordPiece:
    def __init__(self, component: dict) -> None:
        self.prefix = component.get("prefix", "##")
        self.cleanup = bool(component.get("cleanup", True))

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        values = tokens.values
        later = ~is_first(tokens)
        continues = later & starts_with(values, self.prefix)
        stripped = without_prefix(values, self.prefix)
        values = tf.where(continues, stripped, tf.where(later, " " + values, values))
        if self.cleanup:
            values = replace_in_order(values, CLEANUP)
        return tokens.with_values(values)
