"""The `decoder` section: token strings back to text, as tokenizers decodes.

tokenizers maps ids to token strings, runs each decoder's `decode_chain` on the list (a
`Sequence` runs its decoders in order) and joins the result with no separator; without a
decoder it joins the tokens with spaces. Here a decoder maps a batch's token strings, ragged
[rows, (tokens)], to new ones. `DECODERS` is the one list of supported types.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.bpe import BPEDecoder
from tfpipe.tokenization.decoders.byte_fallback import ByteFallback
from tfpipe.tokenization.decoders.byte_level import ByteLevel
from tfpipe.tokenization.decoders.fuse import Fuse
from tfpipe.tokenization.decoders.metaspace import Metaspace
from tfpipe.tokenization.decoders.replace import Replace
from tfpipe.tokenization.decoders.strip import Strip
from tfpipe.tokenization.decoders.tokens import joined_rows
from tfpipe.tokenization.decoders.wordpiece import WordPiece
from tfpipe.tokenization.errors import UnsupportedComponentError

DECODERS = {
    "BPEDecoder": BPEDecoder,
    "ByteFallback": ByteFallback,
    "ByteLevel": ByteLevel,
    "Fuse": Fuse,
    "Metaspace": Metaspace,
    "Replace": Replace,
    "Strip": Strip,
    "WordPiece": WordPiece,
}


class Decoder:
    """The compiled `decoder` section: token strings → [rows] texts."""

    def __init__(self, component: dict | None) -> None:
        self.separator = " " if component is None else ""
        self.steps = [] if component is None else _steps(component)

    def __call__(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        for step in self.steps:
            tokens = step(tokens)
        return joined_rows(tokens, self.separator)


def _steps(component: dict) -> list:
    if not isinstance(component, dict):
        raise UnsupportedComponentError("decoder", component)
    kind = component.get("type")
    if kind == "Sequence":
        return [step for child in component.get("decoders") or [] for step in _steps(child)]
    if kind not in DECODERS:
        raise UnsupportedComponentError("decoder", kind)
    return [DECODERS[kind](component)]
