"""`Replace`: every non-overlapping occurrence of a pattern, left to right, by `content`.

Its two pattern kinds compile differently: a one-character `String` to a `LocalMap` (see
stages), a longer one and a `Regex` to one RE2 rewrite, the `Regex` only when RE2 agrees with
the reference's Oniguruma on probe texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.stages import Stage, local_map, reference_normalizer
from tfpipe.tokenization.regex.re2 import re2_literal

SECTION = "normalizer"


@dataclass
class Replace:
    """`Replace` as one RE2 rewrite: a `String` pattern escaped to a literal, a `Regex` pattern
    as it is, accepted only where RE2 reads it as the reference's Oniguruma does."""

    pattern: str
    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        text = tf.strings.unicode_encode(cps, "UTF-8")
        rewrite = self.content.replace("\\", "\\\\")
        replaced = tf.strings.regex_replace(text, self.pattern, rewrite)
        return tf.strings.unicode_decode(replaced, "UTF-8")


def compile_replace(component: dict) -> list[Stage]:
    """The stage for the component's pattern kind; other patterns are refused."""
    pattern = component.get("pattern", {})
    if set(pattern) == {"Regex"} and pattern["Regex"]:
        return [_replace_regex(component)]
    if set(pattern) != {"String"} or not pattern["String"]:
        raise UnsupportedComponentError(
            SECTION, "Replace", f"only String or RE2-compatible Regex patterns, got {pattern!r}"
        )
    if len(pattern["String"]) == 1:
        return local_map(component)
    return [Replace(re2_literal(pattern["String"]), component.get("content", ""))]


REGEX_PROBES = (
    "", " ", "  ", "a  b   c", "\t \n  x", "   ", "a\u3000\u3000b", "x y", "AbC 12  ",
    "\u00e9  \u00e8", "..  ,,", "\r\n\r\n", "  lead", "trail  ", "\u2581\u2581 \u2581",
)


def _replace_regex(component: dict) -> Replace:
    """A Regex Replace, accepted only when RE2 agrees with the reference on probe texts."""
    stage = Replace(component["pattern"]["Regex"], component.get("content", ""))
    reference = reference_normalizer(component).normalize_str
    try:
        cps = tf.strings.unicode_decode(tf.constant(REGEX_PROBES), "UTF-8")
        got = tf.strings.unicode_encode(stage.apply(cps), "UTF-8").numpy().tolist()
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise UnsupportedComponentError(SECTION, "Replace", f"regex not RE2: {error}") from None
    if [g.decode("utf-8") for g in got] != [reference(t) for t in REGEX_PROBES]:
        raise UnsupportedComponentError(
            SECTION, "Replace", f"regex {stage.pattern!r} behaves differently in RE2"
        )
    return stage
