"""Pre-tokenizers: tokenizer.json's `pre_tokenizer` section compiled to split stages.

The WordPiece-family pre-tokenizers all split on a per-code-point class (whitespace,
punctuation, digit, word character) with one of the `tokenizers` split behaviours. Each becomes
a `SplitStage`: a class table (probed from the reference implementation) plus the behaviour,
applied to every piece with vectorised neighbour comparisons. A `Sequence` is its stages in
order, each splitting the pieces the previous one produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tokenizers import Tokenizer

from tfpipe.tokenization.codepoint_tables import BlockTable, cached_arrays, probe_classes
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers import whitespace_classes
from tfpipe.tokenization.ragged_ops import previous, row_starts_mask

SECTION = "pre_tokenizer"
BEHAVIOURS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")
# `class_runs`: split wherever the class changes and drop class 2 (the Whitespace pre-tokenizer).
CLASS_RUNS = "ClassRuns"


def reference_pre_tokenizer(component: dict):
    """The reference pre-tokenizer object for one component, built from its JSON."""
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": component,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {}, "unk_token": "[UNK]"},
    }
    return Tokenizer.from_str(json.dumps(document)).pre_tokenizer


def _isolated_classes(component: dict) -> np.ndarray:
    """1 for the code points the component splits off from letters on both sides."""
    splitter = reference_pre_tokenizer(component)

    def classify(char: str) -> int:
        return int(len(splitter.pre_tokenize_str("a" + char + "a")) == 3)

    return cached_arrays(
        {"classes": component}, lambda: {"classes": probe_classes(classify)}
    )["classes"]


def word_space_other_classes() -> np.ndarray:
    """0 for \\w, 1 for other non-space, 2 for space, as the Whitespace pre-tokenizer sees them."""
    component = {"type": "Whitespace"}
    splitter = reference_pre_tokenizer(component)

    def classify(char: str) -> int:
        if not splitter.pre_tokenize_str(char):
            return 2
        return 0 if len(splitter.pre_tokenize_str("a" + char)) == 1 else 1

    return cached_arrays(
        {"classes": component}, lambda: {"classes": probe_classes(classify)}
    )["classes"]


@dataclass
class SplitStage:
    """Split every piece on code points of class 1 with a `tokenizers` split behaviour."""

    classes: np.ndarray
    behaviour: str

    def __post_init__(self) -> None:
        self.table = BlockTable.from_dense(self.classes)

    def apply(
        self, values: tf.Tensor, starts: tf.Tensor, piece_of: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(code points, piece-start flags, source piece) → the same after this split."""
        (cls,) = self.table.lookup(values)
        prev_cls = previous(cls, -1)
        same_piece = ~starts
        if self.behaviour == CLASS_RUNS:
            starts |= same_piece & (cls != prev_cls)
            return self._drop(values, starts, piece_of, cls == 2)
        match = cls == 1
        prev_match = previous(match, False) & same_piece
        if self.behaviour == "Removed":
            starts |= prev_match | match
            return self._drop(values, starts, piece_of, match)
        if self.behaviour == "Isolated":
            starts |= same_piece & (match | prev_match)
        elif self.behaviour == "MergedWithPrevious":
            starts |= prev_match
        elif self.behaviour == "MergedWithNext":
            starts |= same_piece & match
        else:
            starts |= same_piece & (match != previous(match, False))
        return values, starts, piece_of

    @staticmethod
    def _drop(values, starts, piece_of, removed):
        """Drop removed code points; the code point after a removed one starts a piece."""
        starts |= previous(removed, False)
        keep = ~removed
        return (
            tf.boolean_mask(values, keep),
            tf.boolean_mask(starts, keep),
            tf.boolean_mask(piece_of, keep),
        )


def _behaviour(component: dict, key: str = "behavior") -> str:
    behaviour = component.get(key, "Isolated")
    if behaviour not in BEHAVIOURS:
        raise UnsupportedComponentError(SECTION, component.get("type"), f"behaviour {behaviour!r}")
    return behaviour


def _stages(component: dict | None) -> list[SplitStage]:
    if component is None:
        return []
    kind = component.get("type")
    if kind == "Sequence":
        return [stage for child in component["pretokenizers"] for stage in _stages(child)]
    if kind == "WhitespaceSplit":
        return [SplitStage(whitespace_classes(), "Removed")]
    if kind == "BertPreTokenizer":
        return [
            SplitStage(whitespace_classes(), "Removed"),
            SplitStage(_isolated_classes({"type": "BertPreTokenizer"}), "Isolated"),
        ]
    if kind == "Whitespace":
        return [SplitStage(word_space_other_classes(), CLASS_RUNS)]
    if kind == "Punctuation":
        classes = _isolated_classes({"type": "Punctuation", "behavior": "Isolated"})
        return [SplitStage(classes, _behaviour(component))]
    if kind == "Digits":
        individual = bool(component.get("individual_digits", False))
        classes = _isolated_classes({"type": "Digits", "individual_digits": True})
        return [SplitStage(classes, "Isolated" if individual else "Contiguous")]
    raise UnsupportedComponentError(SECTION, kind)


class PreTokenizer:
    """The compiled `pre_tokenizer` section: pieces of code points → words."""

    def __init__(self, component: dict | None) -> None:
        self.stages = _stages(component)

    def __call__(self, pieces: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Split a [pieces, (code points)] batch into ([words, (code points)], piece of word)."""
        values = pieces.values
        starts = row_starts_mask(pieces)
        piece_of = tf.cast(pieces.value_rowids(), tf.int32)
        for stage in self.stages:
            values, starts, piece_of = stage.apply(values, starts, piece_of)
        word_ids = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        words = tf.RaggedTensor.from_value_rowids(
            values, word_ids, nrows=tf.reduce_sum(tf.cast(starts, tf.int64)), validate=False
        )
        return words, tf.boolean_mask(piece_of, starts)
