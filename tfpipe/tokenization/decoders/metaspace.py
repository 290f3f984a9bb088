"""`Metaspace`: the replacement character back to spaces; the first token's are dropped
(unless the prepend scheme is `never`), as the pre-tokenizer prepended one there."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import is_first, replace_literal


class Metaspace:
    def __init__(self, component: dict) -> None:
        self.replacement = component.get("replacement", "\u2581")
        scheme = component.get("prepend_scheme")
        if scheme is None:  # files written before prepend_scheme existed
            scheme = "always" if component.get("add_prefix_space", True) else "never"
        self.drops_first = scheme != "never"

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        spaced = replace_literal(tokens.values, self.replacement, " ")
        if not self.drops_first:
            return tokens.with_values(spaced)
        dropped = replace_literal(tokens.values, self.replacement, "")
        return tokens.with_values(tf.where(is_first(tokens), dropped, spaced))
