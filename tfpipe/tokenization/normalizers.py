"""Normalizers: tokenizer.json's `normalizer` section compiled to code-point stages.

Every supported normalizer is a chain of three kinds of stage, each applied to a ragged batch
of code points:
- `LocalMap`: each code point becomes a sequence of code points, independently of its
  neighbours (clean-up, lowercasing, accent filtering, decomposition of one character);
- `CanonicalReorder`: the canonical ordering step of NFD/NFKD (stable sort of runs of combining
  marks by combining class);
- `StripWhitespace`: the `Strip` normalizer.
Consecutive local maps are fused at build time, so the graph does one table lookup for a run of
them. The tables come from the installed `tokenizers` (see codepoint_tables).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tokenizers import normalizers as hf_normalizers
from tokenizers import pre_tokenizers as hf_pre_tokenizers

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    CodepointMap,
    all_codepoints,
    cached_arrays,
    combining_classes,
    probe_classes,
    probe_map,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.precompiled import Precompiled
from tfpipe.tokenization.ragged_ops import (
    concat_rows,
    expand_values,
    mask_values,
    positions_in_rows,
    previous,
    row_ids,
    row_starts_mask,
    select,
)
from tfpipe.tokenization.re2 import re2_literal
from tfpipe.tokenization.reference import reference_tokenizer

SECTION = "normalizer"
SUPPORTED = frozenset(
    {"Sequence", "BertNormalizer", "NFD", "NFKD", "NFC", "NFKC", "Lowercase", "StripAccents",
     "Replace", "Strip", "Precompiled", "Prepend"}
)


@dataclass
class LocalMap:
    """Replace every code point by its table output (possibly nothing, possibly several)."""

    mapping: CodepointMap

    def __post_init__(self) -> None:
        self.table = BlockTable.from_dense(
            self.mapping.lengths, self.mapping.firsts, self.mapping.extra_offsets
        )
        self.extra = np.concatenate([self.mapping.extra, np.zeros(1, np.int32)])

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        lengths, firsts, offsets = self.table.lookup(cps.values)
        return tf.cond(
            tf.reduce_all(lengths == 1),
            lambda: cps.with_values(firsts),
            lambda: self._expand(cps, lengths, firsts, offsets),
        )

    def _expand(self, cps, lengths, firsts, offsets) -> tf.RaggedTensor:
        """The general case: some code points map to none or to several."""
        source, within, splits = expand_values(lengths, cps.row_splits)
        single = tf.gather(lengths, source) == 1
        many = tf.gather(self.extra, tf.gather(offsets, source) + within)
        values = tf.where(single, tf.gather(firsts, source), many)
        return tf.RaggedTensor.from_row_splits(values, splits, validate=False)


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
        segment = tf.cumsum(tf.cast((ccc == 0) | starts, tf.int64)) - 1
        order = tf.argsort(segment * 256 + tf.cast(ccc, tf.int64), stable=True)
        return tf.gather(values, order)


class LocalRun:
    """Consecutive `LocalMap`/`CanonicalReorder` stages, with a shortcut for usual text.

    When every code point of the batch maps to exactly one code point through each map and
    meets each reordering as a starter (combining class 0, so nothing moves), the run is one
    lookup per code point; only other batches run the stages one by one. The table holds
    each code point's offset to its output (or NOT_SIMPLE), so it shares blocks as the maps'
    own tables do not.
    """

    NOT_SIMPLE = np.iinfo(np.int32).min

    def __init__(self, stages: list[LocalMap | CanonicalReorder]) -> None:
        self.stages = stages
        codepoints = np.arange(NUM_CODEPOINTS, dtype=np.int32)
        output = codepoints.copy()
        simple = np.ones(NUM_CODEPOINTS, bool)
        for stage in stages:
            if isinstance(stage, LocalMap):
                simple &= stage.mapping.lengths[output] == 1
                output = stage.mapping.firsts[output]
            else:
                simple &= stage.ccc[output] == 0
        self.table = BlockTable.from_dense(np.where(simple, output - codepoints, self.NOT_SIMPLE))

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        (offset,) = self.table.lookup(cps.values)
        return tf.cond(
            tf.reduce_all(offset != self.NOT_SIMPLE),
            lambda: cps.with_values(cps.values + offset),
            lambda: self._staged(cps),
        )

    def _staged(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        for stage in self.stages:
            cps = stage.apply(cps)
        return cps


@dataclass
class StripWhitespace:
    """`Strip`: drop leading and/or trailing whitespace of every row."""

    whitespace: np.ndarray
    left: bool
    right: bool

    def __post_init__(self) -> None:
        self.table = BlockTable.from_dense(self.whitespace)

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        (space,) = self.table.lookup(cps.values)
        ids = row_ids(cps)
        position = positions_in_rows(cps, ids)
        nrows = cps.nrows(out_type=tf.int32)
        keep = tf.ones_like(ids, tf.bool)
        if self.left:
            text = tf.where(space > 0, tf.int32.max, position)
            keep &= position >= tf.gather(tf.math.unsorted_segment_min(text, ids, nrows), ids)
        if self.right:
            text = tf.where(space > 0, -1, position)
            keep &= position <= tf.gather(tf.math.unsorted_segment_max(text, ids, nrows), ids)
        return mask_values(cps, keep)


class CanonicalCompose(tf.Module):
    """Canonical composition, the last step of NFC/NFKC, on decomposed, reordered text.

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
        values = cps.values
        ccc, joins = self.table.lookup(values)
        new_segment = row_starts_mask(cps) | ((ccc == 0) & (joins == 0))
        segment = tf.cumsum(tf.cast(new_segment, tf.int32)) - 1
        count = tf.reduce_sum(tf.cast(new_segment, tf.int32))
        seg_length = tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, count)
        return tf.cond(
            tf.reduce_any(seg_length > 1),
            lambda: self._compose(cps, ccc, segment, seg_length),
            lambda: cps,
        )

    def _compose(self, cps, ccc, segment, seg_length) -> tf.RaggedTensor:
        values = cps.values
        long_segment = tf.cast(tf.where(seg_length > 1)[:, 0], tf.int32)
        segment_start = tf.math.unsorted_segment_min(
            tf.range(tf.size(values)), segment, tf.size(seg_length)
        )
        first = tf.gather(segment_start, long_segment)
        length = tf.gather(seg_length, long_segment)
        starter = tf.where(tf.gather(ccc, first) == 0, tf.gather(values, first), -1)

        def step(k, starter, starter_at, last, out, deleted):
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
            last = tf.where(
                combine | ~active, last, tf.where(char_ccc == 0, -1, char_ccc)
            )
            written = tf.expand_dims(select(starter_at, combine), 1)
            out = tf.tensor_scatter_nd_update(out, written, select(starter, combine))
            removed = tf.expand_dims(select(at, combine), 1)
            deleted = tf.tensor_scatter_nd_update(
                deleted, removed, tf.ones_like(removed[:, 0], tf.bool)
            )
            return k + 1, starter, starter_at, last, out, deleted

        _, _, _, _, out, deleted = tf.while_loop(
            lambda k, *_: k < tf.reduce_max(length),
            step,
            (
                tf.constant(1),
                starter,
                first,
                tf.fill(tf.shape(first), -1),
                values,
                tf.zeros_like(values, tf.bool),
            ),
        )
        return mask_values(cps.with_values(out), ~deleted)


@dataclass
class ReplaceLiteral:
    """`Replace` with a multi-character literal: every non-overlapping occurrence, left to right."""

    pattern: str
    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        text = tf.strings.unicode_encode(cps, "UTF-8")
        rewrite = self.content.replace("\\", "\\\\")
        replaced = tf.strings.regex_replace(text, re2_literal(self.pattern), rewrite)
        return tf.strings.unicode_decode(replaced, "UTF-8")


@dataclass
class ReplaceRegex:
    """`Replace` with a Regex pattern RE2 expresses the same way (checked at build time)."""

    pattern: str
    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        text = tf.strings.unicode_encode(cps, "UTF-8")
        rewrite = self.content.replace("\\", "\\\\")
        replaced = tf.strings.regex_replace(text, self.pattern, rewrite)
        return tf.strings.unicode_decode(replaced, "UTF-8")


@dataclass
class PrependText:
    """`Prepend`: put `content` in front of every non-empty row."""

    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        prefix = tf.constant([ord(c) for c in self.content], cps.values.dtype)
        nonempty = tf.cast(cps.row_lengths() > 0, cps.row_splits.dtype)
        repeats = tf.size(prefix, out_type=cps.row_splits.dtype)
        within = tf.math.floormod(
            tf.range(tf.reduce_sum(nonempty) * repeats), tf.maximum(repeats, 1)
        )
        prefixes = tf.RaggedTensor.from_row_lengths(
            tf.gather(prefix, within), nonempty * repeats, validate=False
        )
        return concat_rows([prefixes, cps])


Stage = (
    ReplaceLiteral
    | ReplaceRegex
    | PrependText
    | LocalMap
    | CanonicalReorder
    | CanonicalCompose
    | StripWhitespace
    | Precompiled
)


def _probed_map(key: dict, probe: Callable[[str], str]) -> CodepointMap:
    arrays = cached_arrays({"map": key}, lambda: probe_map(probe).to_arrays())
    return CodepointMap.from_arrays(arrays)


def _canonical_reorder() -> CanonicalReorder:
    nfd = hf_normalizers.NFD().normalize_str
    arrays = cached_arrays({"ccc": "NFD"}, lambda: {"ccc": combining_classes(nfd)})
    return CanonicalReorder(arrays["ccc"])


def whitespace_classes() -> np.ndarray:
    """1 where Rust's char::is_whitespace holds (what WhitespaceSplit splits on)."""
    splitter = hf_pre_tokenizers.WhitespaceSplit()
    arrays = cached_arrays(
        {"classes": "WhitespaceSplit"},
        lambda: {"classes": probe_classes(lambda c: int(not splitter.pre_tokenize_str(c)))},
    )
    return arrays["classes"]


def _local(component: dict) -> list[Stage]:
    return [LocalMap(_probed_map(component, reference_normalizer(component).normalize_str))]


def _decompose(component: dict) -> list[Stage]:
    return _local(component) + [_canonical_reorder()]


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


def _compose(component: dict) -> list[Stage]:
    decomposition = {"NFC": "NFD", "NFKC": "NFKD"}[component["type"]]
    ccc = _canonical_reorder()
    return _decompose({"type": decomposition}) + [CanonicalCompose(ccc.ccc, _composites())]


def _bert_part(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False):
    """One step of BertNormalizer on its own, as the reference runs it."""
    options = {
        "clean_text": clean_text,
        "handle_chinese_chars": handle_chinese_chars,
        "strip_accents": strip_accents,
        "lowercase": lowercase,
    }
    return {"type": "BertNormalizer", **options}


def _bert_accent_filter() -> LocalMap:
    """BertNormalizer's accent filter (non-spacing marks only; `StripAccents` drops more).

    After decomposition only NFD-stable code points remain, and on those the reference's
    strip-accents step is exactly the filter.
    """
    nfd = hf_normalizers.NFD().normalize_str
    strip = reference_normalizer(_bert_part(strip_accents=True)).normalize_str

    def probe(char: str) -> str:
        return strip(char) if nfd(char) == char else char

    return LocalMap(_probed_map({"filter": "BertNormalizer.strip_accents"}, probe))


def _bert(component: dict) -> list[Stage]:
    lowercase = bool(component.get("lowercase", True))
    strip_accents = component.get("strip_accents")
    strip_accents = lowercase if strip_accents is None else bool(strip_accents)
    stages = _local(
        _bert_part(
            clean_text=bool(component.get("clean_text", True)),
            handle_chinese_chars=bool(component.get("handle_chinese_chars", True)),
        )
    )
    if strip_accents:
        stages += _decompose({"type": "NFD"}) + [_bert_accent_filter()]
    if lowercase:
        stages += _local(_bert_part(lowercase=True))
    return stages


def _replace(component: dict) -> list[Stage]:
    pattern = component.get("pattern", {})
    if set(pattern) == {"Regex"} and pattern["Regex"]:
        return [_replace_regex(component)]
    if set(pattern) != {"String"} or not pattern["String"]:
        raise UnsupportedComponentError(
            SECTION, "Replace", f"only String or RE2-compatible Regex patterns, got {pattern!r}"
        )
    if len(pattern["String"]) == 1:
        return _local(component)
    return [ReplaceLiteral(pattern["String"], component.get("content", ""))]


REGEX_PROBES = (
    "", " ", "  ", "a  b   c", "\t \n  x", "   ", "a\u3000\u3000b", "x y", "AbC 12  ",
    "\u00e9  \u00e8", "..  ,,", "\r\n\r\n", "  lead", "trail  ", "\u2581\u2581 \u2581",
)


def _replace_regex(component: dict) -> ReplaceRegex:
    """A Regex Replace, accepted only when RE2 agrees with the reference on probe texts."""
    stage = ReplaceRegex(component["pattern"]["Regex"], component.get("content", ""))
    reference = reference_normalizer(component).normalize_str
    try:
        cps = tf.strings.unicode_decode(tf.constant(REGEX_PROBES), "UTF-8")
        got = tf.strings.unicode_encode(stage.apply(cps), "UTF-8").numpy().tolist()
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise UnsupportedComponentError(SECTION, "Replace", f"regex not RE2: {error}") from None
    if [g.decode("utf-8") for g in got] != [reference(t) for t in REGEX_PROBES]:
        raise UnsupportedComponentError(
            SECTION, "Replace", f"regex {stage.pattern!r} behaves differently in RE2"
        )
    return stage


def reference_normalizer(component: dict):
    """The reference normalizer object for one component, built from its JSON."""
    return reference_tokenizer(normalizer=component).normalizer


def _strip(component: dict) -> list[Stage]:
    return [
        StripWhitespace(
            whitespace_classes(),
            left=bool(component.get("strip_left", True)),
            right=bool(component.get("strip_right", True)),
        )
    ]


def _stages(component: dict | None) -> list[Stage]:
    if component is None:
        return []
    kind = component.get("type")
    if kind == "Sequence":
        return [stage for child in component["normalizers"] for stage in _stages(child)]
    if kind == "BertNormalizer":
        return _bert(component)
    if kind in ("NFD", "NFKD"):
        return _decompose({"type": kind})
    if kind in ("NFC", "NFKC"):
        return _compose({"type": kind})
    if kind in ("Lowercase", "StripAccents"):
        return _local({"type": kind})
    if kind == "Replace":
        return _replace(component)
    if kind == "Strip":
        return _strip(component)
    if kind == "Prepend":
        return [PrependText(component.get("prepend", ""))] if component.get("prepend") else []
    if kind == "Precompiled":
        return [Precompiled(component, reference_normalizer(component).normalize_str)]
    raise UnsupportedComponentError(SECTION, kind)


def _fuse(stages: list[Stage]) -> list[Stage]:
    fused: list[Stage] = []
    for stage in stages:
        if isinstance(stage, LocalMap) and fused and isinstance(fused[-1], LocalMap):
            fused[-1] = LocalMap(fused[-1].mapping.then(stage.mapping))
        else:
            fused.append(stage)
    return [s for s in fused if not (isinstance(s, LocalMap) and s.mapping.is_identity())]


def _group_local_runs(stages: list[Stage]) -> list[Stage | LocalRun]:
    """Stages with each run of two or more local ones (maps, reorderings) as a `LocalRun`."""
    steps: list[Stage | LocalRun] = []
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


class Normalizer(tf.Module):
    """The compiled `normalizer` section.

    A tf.Module so the lookup tables of its stages (NFC/NFKC composition, Precompiled keys)
    are tracked and saved with the SavedModel.
    """

    def __init__(self, component: dict | None) -> None:
        super().__init__(name="normalizer")
        self.stages = _fuse(_stages(component))
        self._steps = _group_local_runs(self.stages)

    def __call__(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        for step in self._steps:
            cps = step.apply(cps)
        return cps

