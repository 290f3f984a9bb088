"""`BPEDecoder`: the end-of-word suffix becomes a space, or nothing in a row's last token."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import is_last, replace_literal


class BPEDecoder:
    def __init__(self, component: dict) -> None:
        self.suffix = component.get("suffix", "</w>")

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        values = tokens.values
        spaced = replace_literal(values, self.suffix, " ")
        dropped = replace_literal(values, self.suffix, "")
        return tokens.with_values(tf.where(is_last(tokens), dropped, spaced))
