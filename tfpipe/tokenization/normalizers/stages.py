"""The stages most normalizers compile to, and the reference tables they are built from.

Three kinds of stage apply to a ragged batch of code points:
- `LocalMap`: each code point becomes a sequence of code points, independently of its
  neighbours (clean-up, lowercasing, accent filtering, decomposition of one character);
- `CanonicalReorder`: the canonical ordering step of NFD/NFKD (stable sort of runs of combining
  marks by combining class);
- `LocalRun`: consecutive maps and reorderings run as one lookup for usual text.
Consecutive local maps are fused at build time, so the graph does one table lookup for a run of
them. The tables come from the installed `tokenizers` (see codepoint_tables).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tensorflow as tf
from tokenizers import normalizers as hf_normalizers
from tokenizers import pre_tokenizers as hf_pre_tokenizers

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    CodepointMap,
    cached_arrays,
    combining_classes,
    one_piece,
    probe_classes,
    probe_map,
    unchanged_by,
)
from tfpipe.tokenization.control_flow import functional_cond
from tfpipe.tokenization.ragged_ops import (
    cumsum_in_rows,
    expand_values,
    previous,
    row_ids,
    row_starts_mask,
)
from tfpipe.tokenization.reference import reference_tokenizer


class Stage(Protocol):
    """One compiled normalizer step: a ragged batch of code points in, one out."""

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor: ...


class AlignedStage(Protocol):
    """A step that also moves each code point's alignment, int32 [code points, 2] (the
    [start, end) of the original text it covers) as tokenizers' NormalizedString moves it
    (docs/how-it-works.md#offsets)."""

    def apply_aligned(
        self, cps: tf.RaggedTensor, alignment: tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor]: ...


@dataclass
class LocalMap:
    """Replace every code point by its table output (possibly nothing, possibly several).

    The table holds each code point's offset to its single output, not the output itself
    (0 where the output is not one code point, which only `extra` serves): an identity-like
    block is then the same 128 rows as any other and is stored once. Absolute outputs made
    every block unique, a 13 MB constant per map that a serving process copies dozens of
    times while it loads and instantiates the graph (see docs/serving.md, Memory).
    """

    mapping: CodepointMap

    @functools.cached_property
    def table(self) -> BlockTable:
        """Packed when first looked up: maps fused into others at build time never are."""
        lengths = self.mapping.lengths
        codepoints = np.arange(NUM_CODEPOINTS, dtype=np.int32)
        deltas = np.where(lengths == 1, self.mapping.firsts - codepoints, 0)
        return BlockTable.from_dense(lengths, deltas, self.mapping.extra_offsets)

    @functools.cached_property
    def extra(self) -> np.ndarray:
        return np.concatenate([self.mapping.extra, np.zeros(1, np.int32)])

    def lookup(self, values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Per code point: its output's length, first code point and offset in `extra`."""
        lengths, deltas, offsets = self.table.lookup(values)
        return lengths, values + deltas, offsets

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        lengths, firsts, offsets = self.lookup(cps.values)
        return tf.cond(
            tf.reduce_all(lengths == 1),
            lambda: cps.with_values(firsts),
            lambda: self.expand(cps, lengths, firsts, offsets),
        )

    def expand(self, cps, lengths, firsts, offsets) -> tf.RaggedTensor:
        """The general case: some code points map to none or to several."""
        return self.expand_from(cps, lengths, firsts, offsets)[0]

    def expand_from(
        self, cps, lengths, firsts, offsets
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """`expand`, and per output its input code point and index among that one's outputs."""
        source, within, splits = expand_values(lengths, cps.row_splits)
        single = tf.gather(lengths, source) == 1
        many = tf.gather(self.extra, tf.gather(offsets, source) + within)
        values = tf.where(single, tf.gather(firsts, source), many)
        return tf.RaggedTensor.from_row_splits(values, splits, validate=False), source, within

    def apply_aligned(self, cps, alignment):
        """Every output of a code point takes its alignment; a deleted one's goes with it."""
        return self.expand_aligned(cps, alignment, *self.lookup(cps.values))

    def expand_aligned(self, cps, alignment, lengths, firsts, offsets):
        def expanded() -> tuple[tf.RaggedTensor, tf.Tensor]:
            rows, source, _ = self.expand_from(cps, lengths, firsts, offsets)
            return rows, tf.gather(alignment, source)

        return tf.cond(
            tf.reduce_all(lengths == 1),
            lambda: (cps.with_values(firsts), alignment),
            expanded,
        )


@dataclass
class CanonicalReorder:
    """Canonical ordering: stable-sort each run of non-starters by combining class."""

    ccc: np.ndarray

    def __post_init__(self) -> None:
        self.table = BlockTable.from_dense(self.ccc)

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        values = cps.values
        (ccc,) = self.table.lookup(values)
        starts = row_starts_mask(cps)
        out_of_order = (ccc > 0) & (previous(ccc, 0) > ccc) & ~starts
        return tf.cond(
            tf.reduce_any(out_of_order),
            lambda: cps.with_values(self._sorted(values, ccc, starts)),
            lambda: cps,
        )

    @staticmethod
    def _sorted(values: tf.Tensor, ccc: tf.Tensor, starts: tf.Tensor) -> tf.Tensor:
        return tf.gather(values, CanonicalReorder.order(ccc, starts))

    def sort_order(self, cps: tf.RaggedTensor) -> tf.Tensor:
        """The permutation of `cps.values` that `apply` makes."""
        (ccc,) = self.table.lookup(cps.values)
        return self.order(ccc, row_starts_mask(cps))

    @staticmethod
    def order(ccc: tf.Tensor, starts: tf.Tensor) -> tf.Tensor:
        segment = tf.cumsum(tf.cast((ccc == 0) | starts, tf.int64)) - 1
        return tf.argsort(segment * 256 + tf.cast(ccc, tf.int64), stable=True)


class LocalRun:
    """Consecutive `LocalMap`/`CanonicalReorder` stages, with a shortcut for usual text.

    A reordering only moves non-starters (combining class > 0) among themselves. When every
    non-starter a code point's image brings to a reordering is deleted by the maps after it
    (BertNormalizer's accent filter deletes the marks NFD sorts), the reordering changes
    nothing the run outputs, and the run is the composition of its maps: one `LocalMap`.
    A batch whose code points are all like that (nearly every batch, accented ones included)
    takes the fused map; only other batches run the stages one by one. The fused table marks
    the other code points with a length of -1.
    """

    def __init__(
        self, stages: list[LocalMap | CanonicalReorder], aligned: list | None = None
    ) -> None:
        self.stages = stages
        # The same run for the aligned path, decompositions as one step (`AlignedNormalization`).
        self.aligned = aligned or stages
        fused = _compose([stage for stage in stages if isinstance(stage, LocalMap)])
        self.fused = LocalMap(_mark_unsafe(fused, _reorder_unsafe(stages)))

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        lengths, firsts, offsets = self.fused.lookup(cps.values)

        def mapped_or_staged() -> tf.RaggedTensor:
            return tf.cond(
                tf.reduce_all(lengths >= 0),
                lambda: self.fused.expand(cps, lengths, firsts, offsets),
                lambda: self._staged(cps),
            )

        # Every code point to one (ASCII, most single-script text): the first outputs.
        return functional_cond(
            tf.reduce_all(lengths == 1), lambda: cps.with_values(firsts), mapped_or_staged
        )

    def _staged(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        for stage in self.stages:
            cps = stage.apply(cps)
        return cps

    def apply_aligned(self, cps, alignment):
        """The fused map when no reordering shows (each output then keeps its code point's
        alignment, as when no mark moves in tokenizers), else the aligned steps one by one."""
        lengths, firsts, offsets = self.fused.lookup(cps.values)

        def staged() -> tuple[tf.RaggedTensor, tf.Tensor]:
            rows, aligned = cps, alignment
            for step in self.aligned:
                rows, aligned = step.apply_aligned(rows, aligned)
            return rows, aligned

        return tf.cond(
            tf.reduce_all(lengths >= 0),
            lambda: self.fused.expand_aligned(cps, alignment, lengths, firsts, offsets),
            staged,
        )


def _compose(maps: list[LocalMap]) -> CodepointMap:
    """The maps applied in order (the identity for none)."""
    if not maps:
        return CodepointMap.from_flat(np.ones(NUM_CODEPOINTS, np.int64), np.arange(NUM_CODEPOINTS))
    composed = maps[0].mapping
    for stage in maps[1:]:
        composed = composed.then(stage.mapping)
    return composed


def _reorder_unsafe(stages: list[LocalMap | CanonicalReorder]) -> np.ndarray:
    """Per code point: whether its image brings a reordering a non-starter that survives the
    maps after that reordering (so the reordering may change the run's output)."""
    unsafe = np.zeros(NUM_CODEPOINTS, bool)
    for index, stage in enumerate(stages):
        if isinstance(stage, LocalMap):
            continue
        before = _compose([s for s in stages[:index] if isinstance(s, LocalMap)])
        survives = _compose([s for s in stages[index + 1 :] if isinstance(s, LocalMap)]).lengths
        brings = (stage.ccc > 0) & (survives > 0)
        # A code point the maps before leave alone brings itself; the others, their images.
        changed = before.changed()
        lengths, values = before.outputs_of(changed)
        itself = brings.copy()
        itself[changed] = False
        unsafe |= itself
        unsafe[np.repeat(changed, lengths)[brings[values]]] = True
    return unsafe


def _mark_unsafe(mapping: CodepointMap, unsafe: np.ndarray) -> CodepointMap:
    """`mapping` with the length of each unsafe code point set to -1."""
    return CodepointMap(
        np.where(unsafe, -1, mapping.lengths).astype(np.int32),
        mapping.firsts,
        mapping.extra,
        mapping.extra_offsets,
    )


def slot_alignment(
    inputs: tf.RaggedTensor, outputs: tf.RaggedTensor, weight: tf.Tensor, alignment: tf.Tensor
) -> tf.Tensor:
    """Alignments of `outputs` that take `weight` input slots each, in order along their row
    (tokenizers' `transform` changes): one taking slots gets the first's alignment, one taking
    none that of the slot before it ([0, 0] at a row's start)."""
    out_row = row_ids(outputs)
    taken = cumsum_in_rows(weight, outputs, exclusive=True)
    slot = tf.where(weight > 0, taken, taken - 1)
    in_row_start = tf.gather(tf.cast(inputs.row_starts(), tf.int32), out_row)
    aligned = tf.gather(alignment, in_row_start + tf.maximum(slot, 0))
    return tf.where((slot >= 0)[:, tf.newaxis], aligned, 0)


def fuse_local_maps(stages: list[Stage]) -> list[Stage]:
    """`stages` with each run of `LocalMap`s fused into one, identity maps dropped."""
    fused: list[Stage] = []
    for stage in stages:
        if isinstance(stage, LocalMap) and fused and isinstance(fused[-1], LocalMap):
            fused[-1] = LocalMap(fused[-1].mapping.then(stage.mapping))
        else:
            fused.append(stage)
    return [s for s in fused if not (isinstance(s, LocalMap) and s.mapping.is_identity())]


def group_local_runs(stages: list[Stage]) -> list[Stage]:
    """Stages with each run of two or more local ones (maps, reorderings) as a `LocalRun`."""
    steps: list[Stage] = []
    run: list[LocalMap | CanonicalReorder] = []
    for stage in [*stages, None]:
        if isinstance(stage, LocalMap | CanonicalReorder):
            run.append(stage)
            continue
        steps += [LocalRun(run)] if len(run) > 1 else run
        run = []
        if stage is not None:
            steps.append(stage)
    return steps


def reference_normalizer(component: dict):
    """The reference normalizer object for one component, built from its JSON."""
    return reference_tokenizer(normalizer=component).normalizer


def probed_map(
    key: dict, probe: Callable[[str], str], unchanged: Callable[[str], bool]
) -> CodepointMap:
    arrays = cached_arrays({"map": key}, lambda: probe_map(probe, unchanged).to_arrays())
    return CodepointMap.from_arrays(arrays)


def local_map(component: dict) -> list[LocalMap]:
    """The component as one `LocalMap`, probed from the reference on every code point (in
    runs: its image of a text joins its code points')."""
    normalize = reference_normalizer(component).normalize_str
    return [LocalMap(probed_map(component, normalize, unchanged_by(normalize)))]


def canonical_reorder() -> CanonicalReorder:
    nfd = hf_normalizers.NFD().normalize_str
    arrays = cached_arrays({"ccc": "NFD"}, lambda: {"ccc": combining_classes(nfd)})
    return CanonicalReorder(arrays["ccc"])


def whitespace_classes() -> np.ndarray:
    """1 where Rust's char::is_whitespace holds (what WhitespaceSplit splits on)."""
    splitter = hf_pre_tokenizers.WhitespaceSplit()

    def classify(char: str) -> int:
        return int(not splitter.pre_tokenize_str(char))

    def no_whitespace(run: str) -> int | None:
        return 0 if one_piece(splitter, run) else None

    arrays = cached_arrays(
        {"classes": "WhitespaceSplit"},
        lambda: {"classes": probe_classes(classify, no_whitespace)},
    )
    return arrays["classes"]
