"""The `Precompiled` normalizer (SentencePiece's precompiled_charsmap), compiled exactly.

The reference replaces a short grapheme whole by the replacement of its shortest key prefix,
and maps every other grapheme character by character. At build time the charsmap trie is
decoded into its keys and the grapheme facts that matter are probed from the reference; in
the graph, graphemes come from those flags. The rules and what is not modelled (and why it
cannot matter): docs/how-it-works.md#precompiled-sentencepiece-charsmaps.
"""

from __future__ import annotations

import base64
import struct
import unicodedata

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    CodepointMap,
    cached_arrays,
    probe_classes,
    probe_map,
    unchanged_by,
)
from tfpipe.tokenization.control_flow import functional_cond
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.stages import reference_normalizer, slot_alignment
from tfpipe.tokenization.ragged_ops import (
    expand_values,
    previous,
    row_ids,
    row_starts_mask,
    select,
)
from tfpipe.tokenization.utf8 import utf8_lengths
from tfpipe.tokenization.vocabulary import string_table

SECTION = "normalizer"
MAX_WHOLE_BYTES = 5
MAX_WHOLE_CHARS = 5
ACUTE = "\u0301"
CR, LF = 0x0D, 0x0A
# darts-clone unit fields: a label (with the leaf bit 31 clear), has-leaf, a leaf's value.
LABEL_MASK = (1 << 31) | 0xFF
HAS_LEAF = 1 << 8
VALUE_MASK = (1 << 31) - 1
# Per code point, what it may start: a grapheme replaced by its own replacement (a key), or
# one replaced by a multi-character key it begins. Other graphemes map character by character.
STARTS_NOTHING, STARTS_WHOLE_KEY, IS_KEY = 0, 1, 2


def charsmap_rules(blob: str) -> dict[str, str]:
    """Every (key → replacement) of a precompiled_charsmap.

    Layout: u32 trie size, the darts-clone double array (u32 units), then the NUL-terminated
    replacement strings the leaf values point into. A unit labelled with byte b is the child b
    of the node whose base is its index XOR b, so grouping every labelled unit by that base
    once lets the trie be walked a level at a time with array operations (a few hundred
    thousand keys in under a second, where probing 255 bytes per node took 15 s).
    """
    data = base64.b64decode(blob)
    (trie_size,) = struct.unpack("<I", data[:4])
    units = np.frombuffer(data[4 : 4 + trie_size], "<u4").astype(np.int64)
    strings = data[4 + trie_size :]
    string_ends = np.flatnonzero(np.frombuffer(strings, np.uint8) == 0)
    labels = units & LABEL_MASK
    labelled = np.flatnonzero((labels >= 1) & (labels <= 255))
    parent_bases = labelled ^ labels[labelled]
    order = np.argsort(parent_bases, kind="stable")
    parent_bases, labelled = parent_bases[order], labelled[order]
    rules: dict[str, str] = {}
    bases, keys = _unit_bases(units[:1]), [b""]
    while len(bases):
        first = np.searchsorted(parent_bases, bases, "left")
        counts = np.searchsorted(parent_bases, bases, "right") - first
        children = labelled[_ranges(first, counts)]
        parents = np.repeat(np.arange(len(bases)), counts)
        child_labels = labels[children].tolist()
        keys = [keys[p] + bytes((b,)) for p, b in zip(parents.tolist(), child_labels, strict=True)]
        bases = children ^ _unit_bases(units[children])
        leaves = np.flatnonzero(units[children] & HAS_LEAF)
        starts = units[bases[leaves]] & VALUE_MASK
        stops = string_ends[np.searchsorted(string_ends, starts)]
        for leaf, start, stop in zip(leaves.tolist(), starts.tolist(), stops.tolist(), strict=True):
            rules[keys[leaf].decode("utf-8")] = strings[start:stop].decode("utf-8")
    return rules


def _unit_bases(units: np.ndarray) -> np.ndarray:
    """The base offset a darts-clone unit stores (its children sit at base XOR label)."""
    return (units >> 10) << ((units & (1 << 9)) >> 6)


def _ranges(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated index ranges [first[i], first[i] + counts[i])."""
    group_starts = np.cumsum(counts) - counts
    return np.repeat(first - group_starts, counts) + np.arange(counts.sum())


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _probe_chars(normalize, rules: dict[str, str]) -> tuple[str, str]:
    """(a 3-byte key, a 2-byte joining key) that each take U+0301 into their grapheme.

    With them, grapheme boundaries show in the reference's output: a grapheme of at least 6
    bytes is mapped character by character, a shorter one loses what follows its key.
    """
    keys = [k for k in rules if len(k) == 1]
    absorbs = [k for k in keys if normalize(k + ACUTE) == normalize(k)]
    wide = [k for k in absorbs if _utf8_size(k) == 3]
    marks = [k for k in absorbs if _utf8_size(k) == 2 and unicodedata.category(k) == "Mn"]
    if not wide or not marks or not normalize(ACUTE):
        raise UnsupportedComponentError(SECTION, "Precompiled", "no keys to probe graphemes with")
    return wide[0], marks[0]


def grapheme_classes(
    normalize, rules: dict[str, str], mapping: CodepointMap
) -> dict[str, np.ndarray]:
    """Per code point, as the reference's grapheme segmentation treats it:
    `joins` — it joins the grapheme before it (Extend, ZWJ, SpacingMark);
    `blocks` — nothing joins the grapheme after it, nor it a Prepend before it (controls);
    `prepends` — it joins the character after it (Prepend).

    Most code points are none of these, asked in runs (`probe_in_runs`): with each one's
    probe on a line of its own, the reference's output is what it would be were none of
    them so, the code points mapped one by one (`mapping`); one that is makes a grapheme of
    at least 6 bytes there, mapped character by character, so the acute accent's own image
    shows.
    """
    wide, mark = _probe_chars(normalize, rules)
    wide_out = normalize(wide)
    table = mapping.translation()
    acute_out, mark_out, newline_out = (c.translate(table) for c in (ACUTE, mark, "\n"))

    def none_of(probe, expected):
        """Probes joined by line feeds, which end every grapheme, so none reaches the next."""

        def uniform(run: str) -> int | None:
            text = "\n".join(probe(char) for char in run)
            return 0 if normalize(text) == newline_out.join(map(expected, run)) else None

        return uniform

    def joins(char: str) -> int:
        return int(normalize(wide + ACUTE + char) != wide_out + normalize(char))

    def blocks(char: str) -> int:
        return int(normalize(char + mark + ACUTE) == normalize(char) + normalize(mark))

    def prepends(char: str) -> int:
        return int(normalize(char + wide + ACUTE) != normalize(char) + wide_out)

    return {
        "joins": probe_classes(joins, none_of(
            lambda char: wide + ACUTE + char, lambda char: wide_out + char.translate(table))),
        "blocks": probe_classes(blocks, none_of(
            lambda char: char + mark + ACUTE,
            lambda char: char.translate(table) + mark_out + acute_out)),
        "prepends": probe_classes(prepends, none_of(
            lambda char: char + wide + ACUTE, lambda char: char.translate(table) + wide_out)),
    }


class Precompiled(tf.Module):
    """The compiled `Precompiled` normalizer."""

    def __init__(self, component: dict, normalize) -> None:
        super().__init__(name="precompiled")
        blob = component.get("precompiled_charsmap") or ""
        key = {"precompiled": blob}
        rules = charsmap_rules(blob) if blob else {}
        # A run the reference leaves unchanged, in order and reversed, has every code point
        # unchanged alone: one that is not, alone or in a grapheme, changes the run.
        mapping = CodepointMap.from_arrays(cached_arrays({**key, "part": "map"}, lambda: (
            probe_map(normalize, unchanged_by(normalize)).to_arrays())))
        classes = cached_arrays(
            {**key, "part": "grapheme classes"},
            lambda: grapheme_classes(normalize, rules, mapping),
        )
        whole = {k: v for k, v in rules.items() if len(k) > 1 and _utf8_size(k) <= MAX_WHOLE_BYTES}
        key_starts = np.zeros_like(classes["joins"])
        key_starts[[ord(k[0]) for k in whole]] = STARTS_WHOLE_KEY
        key_starts[[ord(k) for k in rules if len(k) == 1]] = IS_KEY
        self.whole_keys = string_table({k: i for i, k in enumerate(whole)}) if whole else None
        replacements = [[ord(c) for c in v] for v in whole.values()]
        self.max_whole_replacement = max((len(r) for r in replacements), default=0)
        self.replacement_lengths = np.array([len(r) for r in replacements] + [0], np.int32)
        self.replacement_firsts = np.array([(r or [0])[0] for r in replacements] + [0], np.int32)
        starts = np.cumsum([0] + [len(r) for r in replacements])
        self.replacement_offsets = (starts[:-1] + len(mapping.extra)).astype(np.int32)
        self.replacement_offsets = np.append(self.replacement_offsets, 0).astype(np.int32)
        self.extra = np.concatenate(
            [mapping.extra, np.array([c for r in replacements for c in r], np.int32), [0]]
        ).astype(np.int32)
        # Offsets to the single output, not the output itself, so identity-like blocks are
        # shared (as in LocalMap): absolute outputs made a 13 MB constant.
        codepoints = np.arange(NUM_CODEPOINTS, dtype=np.int32)
        deltas = np.where(mapping.lengths == 1, mapping.firsts - codepoints, 0)
        self.map = BlockTable.from_dense(mapping.lengths, deltas, mapping.extra_offsets)
        self.classes = BlockTable.from_dense(
            classes["joins"], classes["blocks"], classes["prepends"], key_starts
        )

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        """Every code point to one (most batches): the first outputs, without expanding."""
        lengths, firsts, offsets = self._outputs(cps)
        return functional_cond(
            tf.reduce_all(lengths == 1),
            lambda: cps.with_values(firsts),
            lambda: self._expand(cps, lengths, firsts, offsets),
        )

    def apply_aligned(self, cps, alignment):
        """Alignments as the reference's replacement changes move them: a part (a character,
        or a grapheme replaced whole) of k code points becoming m takes k input slots, its
        first min(k, m) outputs one each and the last of them the rest; a part becoming
        nothing gives its slots to the output before it, and at a row's start loses them (so
        every later alignment shifts back: docs/how-it-works.md#offsets)."""
        lengths, firsts, offsets, parts = self._outputs(cps, with_parts=True)
        rows = self._expand(cps, lengths, firsts, offsets)
        source, within, _ = expand_values(lengths, cps.row_splits)
        m, k = tf.gather(lengths, source), tf.gather(parts, source)
        last = tf.minimum(m, k) - 1
        weight = tf.where(within < last, 1, tf.where(within == last, 1 + tf.maximum(k - m, 0), 0))
        # A part becoming nothing: its slots go to the output before it, if its row has one.
        outputs_before = tf.cumsum(lengths, exclusive=True)
        total = tf.concat([outputs_before, tf.reduce_sum(lengths, keepdims=True)], 0)
        row_first = tf.gather(total, tf.cast(cps.row_starts(), tf.int32))
        receiver = outputs_before - 1
        gives = (lengths == 0) & (parts > 0) & (receiver >= tf.gather(row_first, row_ids(cps)))
        weight = tf.tensor_scatter_nd_add(
            weight, select(receiver, gives)[:, tf.newaxis], select(parts, gives)
        )
        return rows, slot_alignment(cps, rows, weight, alignment)

    def _expand(self, cps, lengths, firsts, offsets) -> tf.RaggedTensor:
        source, within, splits = expand_values(lengths, cps.row_splits)
        single = tf.gather(lengths, source) == 1
        many = tf.gather(self.extra, tf.gather(offsets, source) + within)
        out = tf.where(single, tf.gather(firsts, source), many)
        return tf.RaggedTensor.from_row_splits(out, splits, validate=False)

    def output_lengths(self, cps: tf.RaggedTensor) -> tf.Tensor:
        """How many code points each code point becomes (0 when dropped with its grapheme)."""
        return self._outputs(cps)[0]

    def _outputs(self, cps: tf.RaggedTensor, with_parts: bool = False) -> tuple:
        """(output length, first output, offset of the others in `extra`) per code point, and
        with `with_parts` its part size: 1, the grapheme's length for the first code point of
        a grapheme replaced whole, 0 for its others.

        Only a multi-character grapheme whose first character starts a key is replaced
        whole; a batch without one (nearly all, even in scripts full of combining marks)
        skips the grapheme analysis, which a functional cond then never runs.
        """
        values = cps.values
        lengths, deltas, offsets = self.map.lookup(values)
        firsts = values + deltas
        joins, blocks, prepends, starts = self.classes.lookup(values)
        control = blocks > 0
        join = ~row_starts_mask(cps) & (
            ((joins > 0) & ~previous(control, False))
            | (previous(prepends > 0, False) & ~control)
            | ((values == LF) & (previous(values, -1) == CR))
        )
        # Every multi-character grapheme has a join at its second character.
        starts_key = previous(starts > STARTS_NOTHING, False)
        outputs = (lengths, firsts, offsets) + ((tf.ones_like(lengths),) if with_parts else ())
        return functional_cond(
            tf.reduce_any(join & starts_key),
            lambda: self._whole_graphemes(values, join, starts, *outputs),
            lambda: outputs,
        )

    def _whole_graphemes(self, values, join, starts, lengths, firsts, offsets, *parts):
        """Outputs of characters in short multi-character graphemes that a key prefixes (and
        with `parts`, the part sizes)."""
        grapheme = tf.cumsum(tf.cast(~join, tf.int32)) - 1
        count = tf.reduce_max(tf.concat([grapheme, [-1]], 0)) + 1
        chars = tf.math.unsorted_segment_sum(tf.ones_like(grapheme), grapheme, count)
        size = tf.math.unsorted_segment_sum(utf8_lengths(values), grapheme, count)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(values)), grapheme, count)
        short = (chars > 1) & (size <= MAX_WHOLE_BYTES)
        key_first = short & (tf.gather(starts, first) == IS_KEY)
        # Shortest key prefix of 2 … 5 characters when the first character is not a key.
        rule = tf.fill([count], -1)
        if self.whole_keys is not None:
            # Only the few short multi-character graphemes are looked up, not every grapheme.
            candidates = tf.where(short & ~key_first)
            candidate_first = tf.gather_nd(first, candidates)
            candidate_chars = tf.gather_nd(chars, candidates)
            candidate_rule = tf.fill(tf.shape(candidate_first), -1)
            for prefix in range(MAX_WHOLE_CHARS, 1, -1):
                fits = candidate_chars >= prefix
                at = tf.expand_dims(candidate_first, 1) + tf.range(prefix)
                at = tf.minimum(at, tf.size(values) - 1)
                text = tf.strings.unicode_encode(tf.gather(values, at), "UTF-8")
                found = tf.where(fits, self.whole_keys.lookup(text), -1)
                candidate_rule = tf.where(found >= 0, found, candidate_rule)
            rule = tf.tensor_scatter_nd_update(rule, candidates, candidate_rule)
        replaced = key_first | (rule >= 0)
        is_first = tf.range(tf.size(values)) == tf.gather(first, grapheme)
        char_rule = tf.gather(rule, grapheme)
        by_rule = is_first & (char_rule >= 0)
        dropped = tf.gather(replaced, grapheme) & ~is_first
        safe_rule = tf.where(char_rule >= 0, char_rule, tf.size(self.replacement_lengths) - 1)
        lengths = tf.where(
            dropped, 0, tf.where(by_rule, tf.gather(self.replacement_lengths, safe_rule), lengths)
        )
        firsts = tf.where(by_rule, tf.gather(self.replacement_firsts, safe_rule), firsts)
        offsets = tf.where(by_rule, tf.gather(self.replacement_offsets, safe_rule), offsets)
        if not parts:
            return lengths, firsts, offsets
        whole_first = is_first & tf.gather(replaced, grapheme)
        part = tf.where(dropped, 0, tf.where(whole_first, tf.gather(chars, grapheme), 1))
        return lengths, firsts, offsets, part


def compile_precompiled(component: dict) -> list[Precompiled]:
    """Per-character replacements are probed from the reference normalizer itself."""
    return [Precompiled(component, reference_normalizer(component).normalize_str)]
