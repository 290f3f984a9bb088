"""`CharDelimiterSplit`: pieces split on one character, which is removed (a class stage)."""

from __future__ import annotations

import numpy as np

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, SplitStage


def compile_char_delimiter_split(component: dict) -> list[SplitStage]:
    """The delimiter as the one code point of class 1, split off and removed; the reference
    compares characters exactly, so no table is probed."""
    delimiter = component.get("delimiter")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise UnsupportedComponentError(SECTION, "CharDelimiterSplit", f"delimiter {delimiter!r}")
    classes = np.zeros(NUM_CODEPOINTS, np.int32)
    classes[ord(delimiter)] = 1
    return [SplitStage(classes, "Removed")]
