"""`ByteLevel`: a leading space, GPT-2's split and the byte-level alphabet.

Three steps on each piece, as `tokenizers` runs them: the leading space for pieces without one
(add_prefix_space, the `PrependSpace` rewrite), the GPT-2 split (use_regex, the `ByteLevel`
split stage) and every code point replaced by the byte-level characters of its UTF-8 bytes
(the `ByteAlphabet` rewrite). Steps after it see those characters: a continuation byte 0xB2
is '²', which `Digits` splits off as numeric.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    CodepointMap,
    cached_arrays,
    one_piece,
    probe_classes,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.metaspace import BLANK, prepend_char
from tfpipe.tokenization.pre_tokenizers.split_stages import (
    SECTION,
    Rewrite,
    Stage,
    reference_pre_tokenizer,
)
from tfpipe.tokenization.ragged_ops import following, previous
from tfpipe.tokenization.utf8 import utf8_lengths

LETTER, NUMBER, OTHER, SPACE = 0, 1, 2, 3
APOSTROPHE = 0x27
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

    def uniform(run: str) -> int | None:
        """One match of the pattern's letter, number or other run from its leader through
        the run: all its code points are of that class."""
        runs = (LETTER, NUMBER, OTHER)
        return next((c for c in runs if one_piece(splitter, leaders[c] + run)), None)

    component = {"classes": "ByteLevel-regex"}
    return cached_arrays(
        component, lambda: {"classes": probe_classes(classify, uniform)}
    )["classes"]


def _shift(values: tf.Tensor, steps: int, fill) -> tf.Tensor:
    for _ in range(steps):
        values = previous(values, fill)
    return values


def _ahead(values: tf.Tensor, steps: int, fill) -> tf.Tensor:
    for _ in range(steps):
        values = following(values, fill)
    return values


@dataclass
class ByteLevel:
    """The split of `ByteLevel` (use_regex): the GPT-2 pattern,
    `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`.

    Its matches tile the text, so it reduces to where tokens start: at class changes; not
    between a space and the run it prefixes; before the last whitespace of a run followed by
    non-space (the look-ahead, which RE2 cannot express); around contractions, which match
    only where a token starts — after a letter, digit or non-space whitespace.
    """

    classes: np.ndarray
    behaviour: str = "Isolated"
    removes = False

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
        contractions = _contractions(values, ends, after_token_end)
        for size, match in contractions.items():
            for offset in range(1, size):
                boundary &= ~_shift(match, offset, False)
            boundary |= _shift(match, size, False)
        return boundary | contractions[2] | contractions[3], removed


def _contractions(values: tf.Tensor, ends: tf.Tensor, after_token_end: tf.Tensor):
    """Apostrophes starting a contraction, by its length with the apostrophe (2 or 3).

    The suffixes start with different letters, so at most one matches an apostrophe and
    none spans another's apostrophe: grouped by length they mark the same boundaries as
    one by one, in a few ops.
    """
    start = (values == APOSTROPHE) & after_token_end & ~ends
    second, third = _ahead(values, 1, -1), _ahead(values, 2, -1)

    def any_of(letters: str, at: tf.Tensor) -> tf.Tensor:
        return functools.reduce(operator.or_, [at == ord(letter) for letter in letters])

    singles = [suffix for suffix in CONTRACTIONS if len(suffix) == 1]
    pairs = [suffix for suffix in CONTRACTIONS if len(suffix) == 2]
    paired = tf.zeros_like(start)
    for ending in sorted({suffix[1] for suffix in pairs}):
        firsts = "".join(suffix[0] for suffix in pairs if suffix[1] == ending)
        paired |= any_of(firsts, second) & (third == ord(ending))
    return {
        2: start & any_of("".join(singles), second),
        3: start & ~_ahead(ends, 1, True) & paired,
    }


class PrependSpace(Rewrite):
    """add_prefix_space: U+0020 in front of every non-empty piece not starting with one."""

    def rewrite(
        self, pieces: tf.RaggedTensor, flags: tf.Tensor | None, track: bool = False
    ) -> tuple[tf.RaggedTensor, tf.Tensor | None]:
        return prepend_char(pieces, BLANK, track=track)


class ByteAlphabet(Rewrite):
    """Every code point → the byte-level characters of its UTF-8 bytes, each aligned to it.

    All in elementwise ops, which cost a fraction of a nanosecond per value, where a table
    lookup, a cumsum or a gather costs several: each code point fills four byte slots, and
    one mask keeps the first as many as it has bytes. ASCII-only batches (most small requests)
    take one gather from the 128 characters of ASCII bytes instead.
    """

    def __init__(self) -> None:
        self.ascii = byte_chars(np.arange(0x80, dtype=np.int32)).numpy()

    def rewrite(
        self, pieces: tf.RaggedTensor, flags: tf.Tensor | None, track: bool = False
    ) -> tuple[tf.RaggedTensor, tf.Tensor | None]:
        cps = pieces.values

        def ascii_only() -> tuple:
            rows = pieces.with_values(tf.gather(self.ascii, cps))
            return (rows, tf.range(tf.size(cps))) if track else rows

        def expanded() -> tuple:
            rows, source = _expanded(pieces)
            return (rows, source) if track else rows

        rewritten = tf.cond(tf.reduce_all(cps < 0x80), ascii_only, expanded)
        return rewritten if track else (rewritten, None)


def _expanded(pieces: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """The general case: code points of several bytes; and each output's code point."""
    cps = pieces.values
    lengths = utf8_lengths(cps)
    kept = tf.where(tf.reshape(tf.range(4) < lengths[:, None], [-1]))[:, 0]
    values = byte_chars(tf.gather(tf.reshape(_utf8_slots(cps, lengths), [-1]), kept))
    ends = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(tf.cast(lengths, tf.int64))], 0)
    expanded = tf.RaggedTensor.from_row_splits(
        values, tf.gather(ends, pieces.row_splits), validate=False
    )
    return expanded, tf.cast(kept // 4, tf.int32)


def _utf8_slots(cps: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """[code points, 4]: the UTF-8 bytes of each, then whatever (masked by the caller)."""
    shift = 6 * (lengths - 1)
    lead_mark = tf.bitwise.bitwise_and(tf.bitwise.right_shift(0xFF00, lengths), 0xFF)
    lead = tf.bitwise.bitwise_or(lead_mark, tf.bitwise.right_shift(cps, shift))
    slots = [tf.where(lengths == 1, cps, lead)]
    for index in range(1, 4):
        payload = tf.bitwise.right_shift(cps, tf.maximum(shift - 6 * index, 0))
        slots.append(tf.bitwise.bitwise_or(0x80, tf.bitwise.bitwise_and(payload, 0x3F)))
    return tf.stack(slots, axis=1)


def byte_chars(values: tf.Tensor) -> tf.Tensor:
    """Bytes → GPT-2's bytes_to_unicode characters: printable bytes stand for themselves,
    the others (0x00-0x20, 0x7F-0xA0, 0xAD) become 256, 257, … in byte order."""
    shift = tf.where(values <= 0x20, 256, tf.where(values == 0xAD, 323 - 0xAD, 0)) + tf.where(
        (values >= 0x7F) & (values <= 0xA0), 289 - 0x7F, 0
    )
    return values + shift


def byte_level_alphabet() -> CodepointMap:
    """Each code point → the byte-level characters of its UTF-8 bytes."""
    byte_char = byte_chars(np.arange(256, dtype=np.int64)).numpy()
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


def compile_byte_level(component: dict) -> list[Stage | Rewrite]:
    """Its steps: the leading space, the split (none without use_regex), the alphabet."""
    steps: list[Stage | Rewrite] = []
    if component.get("add_prefix_space", True):
        steps.append(PrependSpace())
    if component.get("use_regex", True):
        steps.append(ByteLevel(byte_level_classes()))
    return [*steps, ByteAlphabet()]
