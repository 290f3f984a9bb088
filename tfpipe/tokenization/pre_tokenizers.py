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
    """Split every piece on code points of class 1 with a `tokenizers` split behaviour.

    Stages work on the full code point array with a removed flag instead of compacting it
    after each stage: a removed code point always starts a new piece after it, so the
    neighbour tests of later stages see the same pieces as after compaction.
    """

    classes: np.ndarray
    behaviour: str

    def apply(
        self, cls: tf.Tensor, starts: tf.Tensor, removed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(classes, piece-start flags, removed flags) → (starts, removed) after this split."""
        same_piece = ~starts
        if self.behaviour == CLASS_RUNS:
            starts |= same_piece & (cls != previous(cls, -1))
            return self._remove(starts, removed, cls == 2)
        match = cls == 1
        prev_match = previous(match, False) & same_piece
        if self.behaviour == "Removed":
            return self._remove(starts | prev_match | match, removed, match)
        if self.behaviour == "Isolated":
            starts |= same_piece & (match | prev_match)
        elif self.behaviour == "MergedWithPrevious":
            starts |= prev_match
        elif self.behaviour == "MergedWithNext":
            starts |= same_piece & match
        else:
            starts |= same_piece & (match != previous(match, False))
        return starts, removed

    @staticmethod
    def _remove(starts: tf.Tensor, removed: tf.Tensor, matched: tf.Tensor):
        """Mark code points removed; the one after a removed code point starts a piece."""
        removed |= matched
        return starts | previous(removed, False), removed


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

    CLASS_BITS = 2

    def __init__(self, component: dict | None) -> None:
        self.stages = _stages(component)
        if len(self.stages) * self.CLASS_BITS > 30:
            raise UnsupportedComponentError(SECTION, "Sequence", "more than 15 split stages")
        packed = np.zeros_like(self.stages[0].classes) if self.stages else None
        for index, stage in enumerate(self.stages):
            packed |= stage.classes << (self.CLASS_BITS * index)
        self.table = BlockTable.from_dense(packed) if self.stages else None

    def __call__(self, pieces: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Split a [pieces, (code points)] batch into ([words, (code points)], piece of word)."""
        values = pieces.values
        starts = row_starts_mask(pieces)
        piece_of = tf.cast(pieces.value_rowids(), tf.int32)
        if self.stages:
            (packed,) = self.table.lookup(values)
            removed = tf.zeros_like(starts)
            for index, stage in enumerate(self.stages):
                cls = tf.bitwise.bitwise_and(
                    tf.bitwise.right_shift(packed, self.CLASS_BITS * index), 3
                )
                starts, removed = stage.apply(cls, starts, removed)
            kept = ~removed
            values = tf.boolean_mask(values, kept)
            starts = tf.boolean_mask(starts, kept)
            piece_of = tf.boolean_mask(piece_of, kept)
        word_ids = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        words = tf.RaggedTensor.from_value_rowids(
            values, word_ids, nrows=tf.reduce_sum(tf.cast(starts, tf.int64)), validate=False
        )
        return words, tf.boolean_mask(piece_of, starts)
