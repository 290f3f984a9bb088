"""The Unicode normalizers: `NFD`, `NFKD`, `NFC`, `NFKC`, `Lowercase`, `StripAccents`, `Nmt`.

None is one stage of its own: each compiles to the shared stages (see stages) — a decomposition
is a `LocalMap` then a `CanonicalReorder`; `NFC` and `NFKC` add `Compose` after it (both
compose canonically, NFKC's compatibility part is in its decomposition map); `Lowercase` and
`StripAccents` are one `LocalMap` each, and so is `Nmt` (SentencePiece's NMT rules: control
characters removed or made spaces, one code point at a time).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tokenizers import normalizers as hf_normalizers

from tfpipe.tokenization.codepoint_tables import BlockTable, all_codepoints, cached_arrays
from tfpipe.tokenization.normalizers.stages import (
    CanonicalReorder,
    LocalMap,
    LocalRun,
    Stage,
    canonical_reorder,
    local_map,
    slot_alignment,
)
from tfpipe.tokenization.ragged_ops import mask_values, row_starts_mask, select


class Compose(tf.Module):
    """Canonical composition, the last step of `NFC` and `NFKC`, on decomposed, reordered text.

    Text splits into segments that start at a starter which never composes with what precedes
    it; composition never crosses them. Single-character segments (almost all text) are left
    alone; the others run the standard algorithm — each character either joins the last
    starter (when not blocked and a primary composite exists) or stays — vectorised over
    segments, one character position per loop step.
    """

    SHIFT = 21

    def __init__(self, ccc: np.ndarray, composites: dict[tuple[int, int], int]) -> None:
        super().__init__(name="canonical_compose")
        joins = np.zeros_like(ccc)
        for _, second in composites:
            joins[second] = 1
        self.table = BlockTable.from_dense(ccc, joins)
        keys = np.array([(a << self.SHIFT) | b for a, b in composites], np.int64)
        self.composites = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.int64),
                tf.constant(list(composites.values()), tf.int32),
            ),
            default_value=-1,
        )

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        ccc, segment, seg_length = self._segments(cps)
        return tf.cond(
            tf.reduce_any(seg_length > 1),
            lambda: self._compose(cps, ccc, segment, seg_length),
            lambda: cps,
        )

    def _segments(self, cps: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(combining classes, segment of every code point, length of every segment)."""
        ccc, joins = self.table.lookup(cps.values)
        new_segment = row_starts_mask(cps) | ((ccc == 0) & (joins == 0))
        segment = tf.cumsum(tf.cast(new_segment, tf.int32)) - 1
        count = tf.reduce_sum(tf.cast(new_segment, tf.int32))
        seg_length = tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, count)
        return ccc, segment, seg_length

    def _compose(self, cps, ccc, segment, seg_length) -> tf.RaggedTensor:
        out, deleted, _ = self._composed(cps, ccc, segment, seg_length, tf.ones_like(ccc))
        return mask_values(cps.with_values(out), ~deleted)

    def apply_weighted(
        self, cps: tf.RaggedTensor, weight: tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """`apply`, and per output the sum of the weights of the code points it is made of."""
        ccc, segment, seg_length = self._segments(cps)

        def compose() -> tuple[tf.RaggedTensor, tf.Tensor]:
            out, deleted, absorbed = self._composed(cps, ccc, segment, seg_length, weight)
            rows = mask_values(cps.with_values(out), ~deleted)
            return rows, select(weight + absorbed, ~deleted)

        return tf.cond(tf.reduce_any(seg_length > 1), compose, lambda: (cps, weight))

    def _composed(self, cps, ccc, segment, seg_length, weight):
        """(values with composites written at their starters, which values they absorbed, the
        summed `weight` each starter absorbed)."""
        values = cps.values
        long_segment = tf.cast(tf.where(seg_length > 1)[:, 0], tf.int32)
        segment_start = tf.math.unsorted_segment_min(
            tf.range(tf.size(values)), segment, tf.size(seg_length)
        )
        first = tf.gather(segment_start, long_segment)
        length = tf.gather(seg_length, long_segment)
        starter = tf.where(tf.gather(ccc, first) == 0, tf.gather(values, first), -1)

        def step(k, starter, starter_at, last, out, deleted, absorbed):
            active = length > k
            at = first + k
            at_safe = tf.where(active, at, first)
            char = tf.gather(values, at_safe)
            char_ccc = tf.gather(ccc, at_safe)
            key = tf.cast(tf.maximum(starter, 0), tf.int64) * (1 << self.SHIFT) + tf.cast(
                char, tf.int64
            )
            composite = self.composites.lookup(key)
            unblocked = (last < 0) | (last < char_ccc)
            combine = active & (starter >= 0) & unblocked & (composite >= 0)
            becomes_starter = active & ~combine & (char_ccc == 0)
            starter = tf.where(combine, composite, tf.where(becomes_starter, char, starter))
            starter_at = tf.where(becomes_starter, at, starter_at)
            last = tf.where(combine | ~active, last, tf.where(char_ccc == 0, -1, char_ccc))
            written = tf.expand_dims(select(starter_at, combine), 1)
            out = tf.tensor_scatter_nd_update(out, written, select(starter, combine))
            removed = tf.expand_dims(select(at, combine), 1)
            deleted = tf.tensor_scatter_nd_update(
                deleted, removed, tf.ones_like(removed[:, 0], tf.bool)
            )
            absorbed = tf.tensor_scatter_nd_add(absorbed, written, tf.gather(weight, removed[:, 0]))
            return k + 1, starter, starter_at, last, out, deleted, absorbed

        _, _, _, _, out, deleted, absorbed = tf.while_loop(
            lambda k, *_: k < tf.reduce_max(length),
            step,
            (
                tf.constant(1),
                starter,
                first,
                tf.fill(tf.shape(first), -1),
                values,
                tf.zeros_like(values, tf.bool),
                tf.zeros_like(weight),
            ),
        )
        return out, deleted, absorbed


@dataclass
class AlignedNormalization:
    """A decomposition (`LocalMap` then `CanonicalReorder`), composed for NFC/NFKC, as one
    step with alignments: tokenizers runs it as one transform, where each code point's first
    output takes the next input slot and its other outputs the slot before, and where these
    roles move with the code points through reordering and composition (a composite takes as
    many slots as its parts). Each output's weight is the slots it takes."""

    decomposition: LocalMap
    reorder: CanonicalReorder
    compose: Compose | None = None

    def stages(self) -> list:
        """The plain stages it stands for."""
        return [self.decomposition, self.reorder] + ([self.compose] if self.compose else [])

    def apply_aligned(self, cps, alignment):
        lookup = self.decomposition.lookup(cps.values)
        rows, _, within = self.decomposition.expand_from(cps, *lookup)
        order = self.reorder.sort_order(rows)
        rows = rows.with_values(tf.gather(rows.values, order))
        weight = tf.gather(tf.cast(within == 0, tf.int32), order)
        if self.compose is not None:
            rows, weight = self.compose.apply_weighted(rows, weight)
        return rows, slot_alignment(cps, rows, weight, alignment)


def aligned_runs(steps: list) -> list:
    """Aligned steps with each run of two or more local ones (maps, decompositions without
    composition) as a `LocalRun`, which takes its fused map when a batch allows it."""
    grouped, run = [], []
    for step in [*steps, None]:
        local = isinstance(step, LocalMap) or (
            isinstance(step, AlignedNormalization) and step.compose is None
        )
        if local:
            run.append(step)
            continue
        if len(run) > 1:
            plain = [
                s for r in run for s in (r.stages() if isinstance(r, AlignedNormalization) else [r])
            ]
            grouped.append(LocalRun(plain, aligned=run))
        else:
            grouped += run
        run = []
        if step is not None:
            grouped.append(step)
    return grouped


def aligned_steps(stages: list[Stage]) -> list:
    """One component's stages for the aligned path: each decomposition (with its composition)
    as an `AlignedNormalization`, other stages as they are."""
    steps, index = [], 0
    while index < len(stages):
        stage = stages[index]
        follows = stages[index + 1 : index + 3]
        if isinstance(stage, LocalMap) and follows and isinstance(follows[0], CanonicalReorder):
            compose = follows[1] if len(follows) > 1 and isinstance(follows[1], Compose) else None
            steps.append(AlignedNormalization(stage, follows[0], compose))
            index += 3 if compose is not None else 2
        else:
            steps.append(stage)
            index += 1
    return steps


def decompose(component: dict) -> list[Stage]:
    """`NFD` or `NFKD` (the component's type): its decomposition map, then canonical ordering."""
    return local_map(component) + [canonical_reorder()]


HANGUL_L, HANGUL_V, HANGUL_T, HANGUL_S = 0x1100, 0x1161, 0x11A7, 0xAC00


def _composites() -> dict[tuple[int, int], int]:
    """Primary composites as the reference NFC forms them (pair of code points → composite)."""

    def compute() -> dict[str, np.ndarray]:
        nfc = hf_normalizers.NFC().normalize_str
        pairs = []
        for cp in all_codepoints().tolist():
            mapping = unicodedata.decomposition(chr(cp))
            parts = mapping.split()
            if len(parts) == 2 and not mapping.startswith("<"):
                first, second = (int(p, 16) for p in parts)
                if nfc(chr(first) + chr(second)) == chr(cp):
                    pairs.append((first, second, cp))
        for lead in range(19):
            for vowel in range(21):
                syllable = HANGUL_S + (lead * 21 + vowel) * 28
                pairs.append((HANGUL_L + lead, HANGUL_V + vowel, syllable))
                pairs += [(syllable, HANGUL_T + t, syllable + t) for t in range(1, 28)]
        return {"pairs": np.array(pairs, np.int64)}

    pairs = cached_arrays({"composites": "NFC"}, compute)["pairs"]
    return {(int(a), int(b)): int(c) for a, b, c in pairs}


def compile_composition(component: dict) -> list[Stage]:
    """`NFC` or `NFKC`: the matching decomposition, then canonical composition."""
    decomposition = {"NFC": "NFD", "NFKC": "NFKD"}[component["type"]]
    ccc = canonical_reorder()
    return decompose({"type": decomposition}) + [Compose(ccc.ccc, _composites())]


def compile_decomposition(component: dict) -> list[Stage]:
    """`NFD` or `NFKD`; the type alone selects the tables."""
    return decompose({"type": component["type"]})


def compile_character_map(component: dict) -> list[Stage]:
    """`Lowercase`, `StripAccents` or `Nmt`: one map of each code point."""
    return local_map({"type": component["type"]})
