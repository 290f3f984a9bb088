"""Split stages and the phases that run them: the machinery every pre-tokenizer shares.

The class-based pre-tokenizers (Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation,
Digits) all split on a per-code-point class (whitespace, punctuation, digit, word character)
with one of the `tokenizers` split behaviours. Each becomes a `SplitStage`: a class table
(probed from the reference implementation) plus the behaviour, applied to every piece with
vectorised neighbour comparisons. A `SplitPhase` runs a list of stages, each splitting the
pieces the previous one produced; `ByteLevel` and `Split` are stages of their own kind. A
`Rewrite` changes the code points of whole pieces instead (ByteLevel's alphabet and leading
space, Metaspace): it separates two phases.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    cached_arrays,
    one_piece,
    probe_classes,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import (
    previous,
    row_ids,
    rows_from_starts,
    rows_starting_at,
    select,
)
from tfpipe.tokenization.reference import reference_tokenizer

SECTION = "pre_tokenizer"
BEHAVIOURS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")
# `class_runs`: split wherever the class changes and drop class 2 (the Whitespace pre-tokenizer).
CLASS_RUNS = "ClassRuns"


def reference_pre_tokenizer(component: dict):
    """The reference pre-tokenizer object for one component, built from its JSON."""
    return reference_tokenizer(pre_tokenizer=component).pre_tokenizer


def isolated_classes(component: dict) -> np.ndarray:
    """1 for the code points the component splits off from letters on both sides."""
    splitter = reference_pre_tokenizer(component)

    def classify(char: str) -> int:
        return int(len(splitter.pre_tokenize_str("a" + char + "a")) == 3)

    def none_split(run: str) -> int | None:
        """Each code point between letters, and the text left whole: none splits."""
        return 0 if one_piece(splitter, "a" + "a".join(run) + "a") else None

    return cached_arrays(
        {"classes": component}, lambda: {"classes": probe_classes(classify, none_split)}
    )["classes"]


def split_behaviour(component: dict, key: str = "behavior") -> str:
    """The component's split behaviour, refused when `tokenizers` has no such behaviour."""
    behaviour = component.get(key, "Isolated")
    if behaviour not in BEHAVIOURS:
        raise UnsupportedComponentError(SECTION, component.get("type"), f"behaviour {behaviour!r}")
    return behaviour


class Stage(Protocol):
    """One split step of a phase; `classes` (0-3 per code point) when it uses the packed table.

    A stage may mark code points removed; one with `removes` False (read with getattr, True
    when absent) never does, which spares the phase its compaction.
    """

    classes: np.ndarray | None

    def apply(
        self, values: tf.Tensor, cls: tf.Tensor | None, starts: tf.Tensor, removed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]: ...


class Rewrite(ABC):
    """A step that rewrites the code points of every piece, splitting none.

    `flags` (bool per code point, or None) mark the code points at original offset 0, which
    Metaspace `first` reads. With `track`, a rewrite also returns where each output code point
    comes from (an index into the input's values, as `tokenizers` aligns it; None when they
    map one to one), so the caller carries per-code-point payloads (the flags, alignments).
    """

    reads_anchor = False

    def split_commutes(self, stage: Stage, earlier: list[Stage]) -> bool:
        """Whether `stage`, run right after this rewrite, splits the same pieces when run
        before it, at the end of the phase of `earlier` stages (one phase less)."""
        return False

    @abstractmethod
    def rewrite(
        self, pieces: tf.RaggedTensor, flags: tf.Tensor | None, track: bool = False
    ) -> tuple[tf.RaggedTensor, tf.Tensor | None]: ...


@dataclass
class SplitStage:
    """Split every piece on code points of class 1 with a `tokenizers` split behaviour.

    Stages work on the full code point array with a removed flag instead of compacting it
    after each stage: a removed code point always starts a new piece after it, so the
    neighbour tests of later stages see the same pieces as after compaction.
    """

    classes: np.ndarray
    behaviour: str

    @property
    def removes(self) -> bool:
        return self.behaviour in ("Removed", CLASS_RUNS)

    def removes_char(self, char: int) -> bool:
        """Whether the stage removes every occurrence of code point `char`."""
        removed_class = 2 if self.behaviour == CLASS_RUNS else 1
        return self.removes and int(self.classes[char]) == removed_class

    def apply(
        self, values: tf.Tensor, cls: tf.Tensor, starts: tf.Tensor, removed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(code points, classes, piece starts, removed flags) → (starts, removed) after it."""
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


class SplitPhase:
    """Split stages run together on flat code points, one packed class lookup for all.

    Regex stages (`Split`) bring their own character groups and take no packed class.
    """

    CLASS_BITS = 2

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages
        tabled = [stage for stage in stages if stage.classes is not None]
        if len(tabled) * self.CLASS_BITS > 30:
            raise UnsupportedComponentError(SECTION, "Sequence", "more than 15 split stages")
        self.slots = {}
        packed = np.zeros(NUM_CODEPOINTS, np.int32)
        for index, stage in enumerate(tabled):
            packed |= stage.classes << (self.CLASS_BITS * index)
            self.slots[id(stage)] = self.CLASS_BITS * index
        self.table = BlockTable.from_dense(packed) if tabled else None
        self.removes = any(getattr(stage, "removes", True) for stage in stages)

    def __call__(self, pieces: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[pieces, (code points)] → ([words, (code points)], piece of each word)."""
        words, piece_of, _ = self.split(pieces)
        return words, piece_of

    def split(
        self, pieces: tf.RaggedTensor, payload: dict[str, tf.Tensor] | None = None
    ) -> tuple[tf.RaggedTensor, tf.Tensor, dict[str, tf.Tensor]]:
        """`__call__`, plus the per-code-point `payload` tensors of the words' code points."""
        payload = payload or {}
        values = pieces.values
        pieces_starting = rows_starting_at(pieces)
        starts = pieces_starting > 0
        removed = tf.zeros_like(starts)
        if self.stages:
            packed = self.table.lookup(values)[0] if self.table is not None else None
            for stage in self.stages:
                cls = None
                if id(stage) in self.slots:
                    shifted = tf.bitwise.right_shift(packed, self.slots[id(stage)])
                    cls = tf.bitwise.bitwise_and(shifted, 3)
                starts, removed = stage.apply(values, cls, starts, removed)
        if not self.removes:
            # Every piece starts a word: a word's piece counts the pieces up to its start.
            piece_of = tf.cumsum(select(pieces_starting, starts)) - 1
            return rows_from_starts(values, starts), piece_of, payload
        kept = ~removed
        piece_of = select(row_ids(pieces), kept)
        values, starts = select(values, kept), select(starts, kept)
        payload = {name: select(value, kept) for name, value in payload.items()}
        return rows_from_starts(values, starts), select(piece_of, starts), payload


def split_kept(
    values: tf.Tensor,
    starts: tf.Tensor,
    removed: tf.Tensor,
    split: Callable[[tf.RaggedTensor], tuple[tf.Tensor, tf.Tensor]],
) -> tuple[tf.Tensor, tf.Tensor]:
    """A stage's (starts, removed) from `split`, which sees only the code points earlier stages
    kept, as pieces, and returns new boundaries and removals for them (flat, one each)."""
    kept_at = tf.where(~removed)
    pieces = rows_from_starts(tf.gather_nd(values, kept_at), tf.gather_nd(starts, kept_at))
    boundary, drop = split(pieces)
    shape = tf.shape(starts, out_type=tf.int64)
    starts |= tf.scatter_nd(kept_at, boundary, shape)
    removed |= tf.scatter_nd(kept_at, drop, shape)
    return starts | previous(removed, False), removed
