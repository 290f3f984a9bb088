"""Pre-tokenizers: tokenizer.json's `pre_tokenizer` section compiled to split stages.

The WordPiece-family pre-tokenizers all split on a per-code-point class (whitespace,
punctuation, digit, word character) with one of the `tokenizers` split behaviours. Each becomes
a `SplitStage`: a class table (probed from the reference implementation) plus the behaviour,
applied to every piece with vectorised neighbour comparisons. A `Sequence` is its stages in
order, each splitting the pieces the previous one produced. `Metaspace` rewrites the pieces
(spaces → ▁, ▁ prepended) between two such phases of split stages, its own split
(MergedWithNext on ▁) opening the second. With `prepend_scheme: first` the first phase also
carries which words start at original offset 0 (see anchoring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    CodepointMap,
    cached_arrays,
    probe_classes,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers import LocalMap, whitespace_classes
from tfpipe.tokenization.ragged_ops import (
    concat_rows,
    following,
    positions_in_rows,
    previous,
    row_ids,
    row_starts_mask,
    rows_from_starts,
    select,
)
from tfpipe.tokenization.reference import reference_tokenizer
from tfpipe.tokenization.regex_split import RegexSplit

SECTION = "pre_tokenizer"
SUPPORTED = frozenset(
    {"Sequence", "WhitespaceSplit", "BertPreTokenizer", "Whitespace", "Punctuation", "Digits",
     "ByteLevel", "Metaspace", "Split"}
)
BEHAVIOURS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")
# `class_runs`: split wherever the class changes and drop class 2 (the Whitespace pre-tokenizer).
CLASS_RUNS = "ClassRuns"


def reference_pre_tokenizer(component: dict):
    """The reference pre-tokenizer object for one component, built from its JSON."""
    return reference_tokenizer(pre_tokenizer=component).pre_tokenizer


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


LETTER, NUMBER, OTHER, SPACE = 0, 1, 2, 3
APOSTROPHE, BLANK = 0x27, 0x20
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def byte_level_classes() -> np.ndarray:
    """\\p{L}, \\p{N}, other, \\s: the classes the GPT-2 pattern sees, as the reference's regex
    engine sees them. A code point is in a class when it extends a run of that class."""
    splitter = reference_pre_tokenizer(
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    )
    leaders = {LETTER: "a", NUMBER: "1", OTHER: "!", SPACE: "\t"}

    def classify(char: str) -> int:
        joined = [
            k for k, lead in leaders.items() if len(splitter.pre_tokenize_str(lead + char)) == 1
        ]
        if len(joined) != 1:
            raise UnsupportedComponentError(SECTION, "ByteLevel", f"unclassifiable {char!r}")
        return joined[0]

    component = {"classes": "ByteLevel-regex"}
    return cached_arrays(component, lambda: {"classes": probe_classes(classify)})["classes"]


def _shift(values: tf.Tensor, steps: int, fill) -> tf.Tensor:
    for _ in range(steps):
        values = previous(values, fill)
    return values


def _ahead(values: tf.Tensor, steps: int, fill) -> tf.Tensor:
    for _ in range(steps):
        values = following(values, fill)
    return values


@dataclass
class Gpt2Split:
    """The GPT-2 pattern, `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|`
    ` ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`.

    Its matches tile the text, so it reduces to where tokens start: at class changes; not
    between a space and the run it prefixes; before the last whitespace of a run followed by
    non-space (the look-ahead, which RE2 cannot express); around contractions, which match
    only where a token starts — after a letter, digit or non-space whitespace.
    """

    classes: np.ndarray
    behaviour: str = "Isolated"

    def apply(self, values, cls, starts, removed):
        ends = following(starts, True)
        same_prev = ~starts
        space = cls == SPACE
        blank = values == BLANK
        last_space = space & ~ends & following(~space, False)
        attached = last_space & blank
        boundary = starts | (same_prev & (cls != previous(cls, -1)))
        boundary &= ~(same_prev & previous(attached, False))
        boundary |= last_space & same_prev & previous(space, False)
        after_token_end = starts | ~(previous(cls == OTHER, False) | previous(blank, False))
        lengths = {}
        for suffix in CONTRACTIONS:
            match = (values == APOSTROPHE) & after_token_end
            for offset, char in enumerate(suffix, start=1):
                inside = ~_ahead(ends, offset - 1, True)
                match &= inside & (_ahead(values, offset, -1) == ord(char))
            lengths[suffix] = match
        any_contraction = tf.zeros_like(starts)
        for suffix, match in lengths.items():
            any_contraction |= match
            size = len(suffix) + 1
            for offset in range(1, size):
                boundary &= ~_shift(match, offset, False)
            boundary |= _shift(match, size, False)
        return boundary | any_contraction, removed


Stage = SplitStage | Gpt2Split | RegexSplit


def _behaviour(component: dict, key: str = "behavior") -> str:
    behaviour = component.get(key, "Isolated")
    if behaviour not in BEHAVIOURS:
        raise UnsupportedComponentError(SECTION, component.get("type"), f"behaviour {behaviour!r}")
    return behaviour


def _flatten(component: dict | None) -> list[dict]:
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [c for child in component["pretokenizers"] for c in _flatten(child)]
    return [component]


def _stages(component: dict | None) -> list[Stage]:
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
    if kind == "ByteLevel":
        return [Gpt2Split(byte_level_classes())] if component.get("use_regex", True) else []
    if kind == "Split":
        return [RegexSplit.from_component(component)]
    if kind == "Digits":
        individual = bool(component.get("individual_digits", False))
        classes = _isolated_classes({"type": "Digits", "individual_digits": True})
        return [SplitStage(classes, "Isolated" if individual else "Contiguous")]
    raise UnsupportedComponentError(SECTION, kind)


class PreTokenizer:
    """The compiled `pre_tokenizer` section: pieces of code points → words.

    `ByteLevel` adds two steps around the splits: a leading space for pieces that lack one
    (add_prefix_space) and, last, each code point replaced by the byte-level characters of its
    UTF-8 bytes.
    """

    def __init__(self, component: dict | None) -> None:
        components = _flatten(component)
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
            self.metaspace = MetaspaceRewrite.from_component(components[index])
            after = self.metaspace.stages() + [
                stage for c in components[index + 1 :] for stage in _stages(c)
            ]
            components = components[:index]
        self.phases = [SplitPhase([stage for c in components for stage in _stages(c)])]
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

    def __call__(self, pieces: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """[pieces, (code points)] → ([words, (code points)], piece of each word)."""
        words, piece_of, _ = self.split(pieces)
        return words, piece_of

    def split(
        self, pieces: tf.RaggedTensor, flags: tf.Tensor | None = None
    ) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor | None]:
        """`__call__`, plus the per-code-point `flags` of each word's first code point."""
        values = pieces.values
        starts = row_starts_mask(pieces)
        piece_of = row_ids(pieces)
        if self.stages:
            packed = self.table.lookup(values)[0] if self.table is not None else None
            removed = tf.zeros_like(starts)
            for stage in self.stages:
                cls = None
                if id(stage) in self.slots:
                    shifted = tf.bitwise.right_shift(packed, self.slots[id(stage)])
                    cls = tf.bitwise.bitwise_and(shifted, 3)
                starts, removed = stage.apply(values, cls, starts, removed)
            kept = ~removed
            values = select(values, kept)
            starts = select(starts, kept)
            piece_of = select(piece_of, kept)
            flags = None if flags is None else select(flags, kept)
        words = rows_from_starts(values, starts)
        word_flags = None if flags is None else select(flags, starts)
        return words, select(piece_of, starts), word_flags


PREPEND_SCHEMES = ("always", "never", "first")


@dataclass
class MetaspaceRewrite:
    """`Metaspace`: spaces become the replacement, which is prepended to every piece lacking it
    (`always`), to none (`never`) or only to pieces at original offset 0 (`first`).

    Split (MergedWithNext on the replacement) is the split stage it returns from `stages`.
    For `first` the caller says which pieces start at offset 0: the first piece of each sequence
    unless an added token, a removed character or a pre-tokenizer split precedes it (see
    anchoring for what normalizers do to that offset).
    """

    replacement: int
    scheme: str
    split: bool

    @classmethod
    def from_component(cls, component: dict) -> MetaspaceRewrite:
        replacement = component.get("replacement", "\u2581")
        if len(replacement) != 1:
            raise UnsupportedComponentError(SECTION, "Metaspace", f"replacement {replacement!r}")
        if "prepend_scheme" in component:
            scheme = component["prepend_scheme"]
        else:
            scheme = "always" if component.get("add_prefix_space", True) else "never"
        if scheme not in PREPEND_SCHEMES:
            raise UnsupportedComponentError(SECTION, "Metaspace", f"prepend_scheme {scheme!r}")
        return cls(ord(replacement), scheme, bool(component.get("split", True)))

    def stages(self) -> list[SplitStage]:
        if not self.split:
            return []
        classes = np.zeros(NUM_CODEPOINTS, np.int32)
        classes[self.replacement] = 1
        return [SplitStage(classes, "MergedWithNext")]

    def apply(self, pieces: tf.RaggedTensor, anchored: tf.Tensor | None = None) -> tf.RaggedTensor:
        """Rewrite the pieces; `anchored` (bool per piece) is required for `first`."""
        values = pieces.values
        replacement = tf.constant(self.replacement, values.dtype)
        pieces = pieces.with_values(tf.where(values == BLANK, replacement, values))
        if self.scheme == "never":
            return pieces
        return prepend_char(pieces, self.replacement, anchored if self.scheme == "first" else None)


def prepend_space(pieces: tf.RaggedTensor) -> tf.RaggedTensor:
    """Prefix every non-empty piece not starting with U+0020 with one (ByteLevel's rule)."""
    return prepend_char(pieces, BLANK)


def prepend_char(
    pieces: tf.RaggedTensor, char: int, where: tf.Tensor | None = None
) -> tf.RaggedTensor:
    """Prefix every non-empty piece not starting with `char` (and, if given, `where`) with it."""
    nonempty = pieces.row_lengths() > 0
    if where is not None:
        nonempty &= where
    first_index = tf.where(nonempty, pieces.row_starts(), 0)
    padded = tf.concat([pieces.values, tf.constant([char], pieces.values.dtype)], 0)
    first = tf.where(nonempty, tf.gather(padded, first_index), char)
    needs = tf.cast(first != char, pieces.row_splits.dtype)
    prefix = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(needs)], tf.constant(char, pieces.values.dtype)), needs
    )
    return concat_rows([prefix, pieces])


def byte_level_alphabet() -> CodepointMap:
    """Each code point → the byte-level characters of its UTF-8 bytes (GPT-2's bytes_to_unicode)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    byte_char = np.zeros(256, np.int64)
    byte_char[printable] = printable
    others = [b for b in range(256) if b not in set(printable)]
    byte_char[others] = 256 + np.arange(len(others))
    cps = np.arange(NUM_CODEPOINTS, dtype=np.int64)
    lengths = 1 + (cps >= 0x80) + (cps >= 0x800) + (cps >= 0x10000)
    lead = np.array([0, 0, 0xC0, 0xE0, 0xF0])[lengths]
    utf8 = np.full((NUM_CODEPOINTS, 4), -1, np.int64)
    utf8[:, 0] = np.where(lengths == 1, cps, lead | (cps >> (6 * (lengths - 1))))
    for k in range(1, 4):
        continuation = 0x80 | ((cps >> np.maximum(6 * (lengths - 1 - k), 0)) & 0x3F)
        utf8[:, k] = np.where(k < lengths, continuation, -1)
    values = byte_char[utf8[utf8 >= 0]]
    return CodepointMap.from_flat(lengths, values)
