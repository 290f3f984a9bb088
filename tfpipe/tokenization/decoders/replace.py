"""`Replace`: a pattern's non-overlapping matches in each token by `content`.

A `String` pattern is matched literally; a `Regex` (Oniguruma) pattern by the normalizer's
`Replace` over code points.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import replace_literal
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.replace import Replace as CodepointReplace
from tfpipe.tokenization.regex.matcher import compile_matcher

SECTION = "decoder"


class Replace:
    def __init__(self, component: dict) -> None:
        pattern = component.get("pattern")
        content = component.get("content", "")
        if not isinstance(pattern, dict) or len(pattern) != 1 or not isinstance(content, str):
            raise UnsupportedComponentError(SECTION, "Replace", f"pattern {pattern!r}")
        ((kind, source),) = pattern.items()
        if kind == "String" and isinstance(source, str) and source:
            self.literal, self.regex = source, None
        else:
            self.literal = None
            matcher = compile_matcher(kind, source, SECTION, "Replace")
            self.regex = CodepointReplace(matcher, content)
        self.content = content

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        if self.literal is not None:
            return tokens.with_values(replace_literal(tokens.values, self.literal, self.content))
        cps = tf.strings.unicode_decode(tokens.values, "UTF-8")
        return tokens.with_values(tf.strings.unicode_encode(self.regex.apply(cps), "UTF-8"))
