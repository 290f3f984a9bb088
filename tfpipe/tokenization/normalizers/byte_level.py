"""`ByteLevel` as a normalizer: every code point becomes the byte-level characters of its
UTF-8 bytes, the same alphabet the `ByteLevel` pre-tokenizer ends with (one `LocalMap`)."""

from __future__ import annotations

from tfpipe.tokenization.normalizers.stages import LocalMap
from tfpipe.tokenization.pre_tokenizers.byte_level import byte_level_alphabet


def compile_byte_level(component: dict) -> list[LocalMap]:
    """The byte-level alphabet as a map; it has no options."""
    return [LocalMap(byte_level_alphabet())]
