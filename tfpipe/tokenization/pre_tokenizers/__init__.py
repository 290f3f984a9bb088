"""Pre-tokenizers: tokenizer.json's `pre_tokenizer` section compiled to split stages.

`PRE_TOKENIZERS` maps each supported `type` to its compiler (component JSON → split stages) and
is the one list of what is supported. A `Sequence` is no component but a container: its
children, flattened, run in order, each splitting the pieces the previous one produced. Two
types also rewrite the pieces, which `PreTokenizer` does around the split phases: `ByteLevel`
(a leading space first, the byte-level alphabet last) and `Metaspace` (between two phases).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.stages import LocalMap
from tfpipe.tokenization.pre_tokenizers.byte_level import (
    byte_level_alphabet,
    compile_byte_level,
    prepend_space,
)
from tfpipe.tokenization.pre_tokenizers.delimiter import compile_char_delimiter_split
from tfpipe.tokenization.pre_tokenizers.digits import compile_digits
from tfpipe.tokenization.pre_tokenizers.fixed_length import compile_fixed_length
from tfpipe.tokenization.pre_tokenizers.metaspace import Metaspace, compile_metaspace
from tfpipe.tokenization.pre_tokenizers.punctuation import (
    compile_bert_pre_tokenizer,
    compile_punctuation,
)
from tfpipe.tokenization.pre_tokenizers.split import compile_split
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, SplitPhase, Stage
from tfpipe.tokenization.pre_tokenizers.unicode_scripts import compile_unicode_scripts
from tfpipe.tokenization.pre_tokenizers.whitespace import (
    compile_whitespace,
    compile_whitespace_split,
)
from tfpipe.tokenization.ragged_ops import positions_in_rows, row_ids

PRE_TOKENIZERS: dict[str, Callable[[dict], list[Stage]]] = {
    "WhitespaceSplit": compile_whitespace_split,
    "BertPreTokenizer": compile_bert_pre_tokenizer,
    "Whitespace": compile_whitespace,
    "Punctuation": compile_punctuation,
    "Digits": compile_digits,
    "ByteLevel": compile_byte_level,
    "Metaspace": compile_metaspace,
    "Split": compile_split,
    "CharDelimiterSplit": compile_char_delimiter_split,
    "FixedLength": compile_fixed_length,
    "UnicodeScripts": compile_unicode_scripts,
}


def flatten(component: dict | None) -> list[dict]:
    """The components of the section in order, nested Sequences opened."""
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [c for child in component["pretokenizers"] for c in flatten(child)]
    return [component]


def split_stages(components: list[dict]) -> list[Stage]:
    """The split stages of (flattened) components, in order; unknown types fail here."""
    stages: list[Stage] = []
    for component in components:
        kind = component.get("type")
        if kind not in PRE_TOKENIZERS:
            raise UnsupportedComponentError(SECTION, kind)
        stages += PRE_TOKENIZERS[kind](component)
    return stages


class PreTokenizer:
    """The compiled `pre_tokenizer` section: pieces of code points → words.

    `ByteLevel` adds two steps around the splits: a leading space for pieces that lack one
    (add_prefix_space) and, last, each code point replaced by the byte-level characters of its
    UTF-8 bytes.
    """

    def __init__(self, component: dict | None) -> None:
        components = flatten(component)
        byte_level = [i for i, c in enumerate(components) if c.get("type") == "ByteLevel"]
        metaspace = [i for i, c in enumerate(components) if c.get("type") == "Metaspace"]
        self.prefix_space = False
        self.byte_map = None
        if byte_level:
            index = byte_level[0]
            if byte_level != [len(components) - 1] or metaspace:
                raise UnsupportedComponentError(
                    SECTION, "ByteLevel", "only as the last step, without Metaspace"
                )
            self.prefix_space = bool(components[index].get("add_prefix_space", True))
            if self.prefix_space and index > 0:
                raise UnsupportedComponentError(
                    SECTION, "ByteLevel", "add_prefix_space after other pre-tokenizers"
                )
            self.byte_map = LocalMap(byte_level_alphabet())
        self.metaspace = None
        after: list[Stage] = []
        if metaspace:
            if len(metaspace) > 1:
                raise UnsupportedComponentError(SECTION, "Metaspace", "more than one")
            index = metaspace[0]
            self.metaspace = Metaspace.from_component(components[index])
            after = split_stages(components[index:])
            components = components[:index]
        self.phases = [SplitPhase(split_stages(components))]
        if self.metaspace is not None:
            self.phases.append(SplitPhase(after))

    @property
    def needs_anchor(self) -> bool:
        """Whether `__call__` needs each piece's anchored prefix (Metaspace `first`)."""
        return self.metaspace is not None and self.metaspace.scheme == "first"

    def __call__(
        self, pieces: tf.RaggedTensor, anchored: tf.Tensor | None = None
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Split a [pieces, (code points)] batch into ([words, (code points)], piece of word).

        `anchored` (int32 per piece, required when `needs_anchor`): how many leading code points
        of each piece sit at offset 0 of the original text.
        """
        if self.prefix_space:
            pieces = prepend_space(pieces)
        flags = None
        if self.needs_anchor:
            if anchored is None:
                raise ValueError("Metaspace prepend_scheme 'first' needs `anchored`")
            flags = positions_in_rows(pieces) < tf.gather(anchored, row_ids(pieces))
        words, piece_of, word_anchored = self.phases[0].split(pieces, flags)
        if self.metaspace is not None:
            words, owner = self.phases[1](self.metaspace.apply(words, word_anchored))
            piece_of = tf.gather(piece_of, owner)
        if self.byte_map is not None:
            words = self.byte_map.apply(words)
        return words, piece_of
