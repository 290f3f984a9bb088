"""`Whitespace` (runs of \\w, of other non-space, spaces dropped) and `WhitespaceSplit`."""

from __future__ import annotations

import numpy as np

from tfpipe.tokenization.codepoint_tables import cached_arrays, one_piece, probe_classes
from tfpipe.tokenization.normalizers.stages import whitespace_classes
from tfpipe.tokenization.pre_tokenizers.split_stages import (
    CLASS_RUNS,
    SplitStage,
    reference_pre_tokenizer,
)


def word_space_other_classes() -> np.ndarray:
    """0 for \\w, 1 for other non-space, 2 for space, as the Whitespace pre-tokenizer sees them."""
    component = {"type": "Whitespace"}
    splitter = reference_pre_tokenizer(component)

    def classify(char: str) -> int:
        if not splitter.pre_tokenize_str(char):
            return 2
        return 0 if len(splitter.pre_tokenize_str("a" + char)) == 1 else 1

    def uniform(run: str) -> int | None:
        """One \\w+ match from a letter, or one [^\\w\\s]+ from "!", through the run: all
        its code points are of that class."""
        return next((c for c, lead in ((0, "a"), (1, "!")) if one_piece(splitter, lead + run)),
                    None)

    return cached_arrays(
        {"classes": component}, lambda: {"classes": probe_classes(classify, uniform)}
    )["classes"]


def compile_whitespace(component: dict) -> list[SplitStage]:
    """`Whitespace`: a split wherever the class changes, spaces removed."""
    return [SplitStage(word_space_other_classes(), CLASS_RUNS)]


def compile_whitespace_split(component: dict) -> list[SplitStage]:
    """`WhitespaceSplit`: whitespace (Rust's char::is_whitespace) removed."""
    return [SplitStage(whitespace_classes(), "Removed")]
