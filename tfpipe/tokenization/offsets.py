"""Token offsets: where each token came from in the original text, as tokenizers computes them.

Normalizers and pre-tokenizers carry each code point's alignment ([start, end) in the
original text) and models place every token in its word (`tokenize_with_spans`); a token's
offsets are then its first code point's start and its last one's end, as tokenizers'
`NormalizedString` converts a normalized range. The ByteLevel and RobertaProcessing
post-processors then trim spaces off tokens' offsets (`OffsetTrimmer`). The rules:
docs/how-it-works.md#offsets.
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf
from tokenizers import Tokenizer

from tfpipe.tokenization.normalizers.stages import whitespace_classes
from tfpipe.tokenization.ragged_ops import expand, following, previous, row_ids

# The byte-level character of the space byte: what a ByteLevel token's spaces look like.
BYTE_LEVEL_SPACE = "\u0120"
TRIMMING = ("ByteLevel", "RobertaProcessing")


def token_offsets(
    words: tf.RaggedTensor,
    alignment: tf.Tensor,
    tokens: tf.RaggedTensor,
    start: tf.Tensor,
    stop: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per token of `tokens` ([words, (tokens)], flat): its [start, end) in the original text.

    `alignment` holds each code point of `words` its original [start, end); `start`, `stop`
    each token's code points in its word.
    """
    first = tf.gather(tf.cast(words.row_starts(), tf.int32), row_ids(tokens))
    return (
        tf.gather(alignment[:, 0], first + start),
        tf.gather(alignment[:, 1], first + tf.maximum(stop - 1, start)),
    )


def pack_offsets(start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """start << 32 | end, int64: offsets move with ragged ops as one value."""
    return tf.bitwise.left_shift(tf.cast(start, tf.int64), 32) | tf.cast(end, tf.int64)


def unpack_offsets(packed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    start = tf.bitwise.right_shift(packed, 32)
    return tf.cast(start, tf.int32), tf.cast(packed - tf.bitwise.left_shift(start, 32), tf.int32)


def in_bytes(
    offsets: tf.RaggedTensor, cps: tf.RaggedTensor, byte_starts: tf.Tensor, sizes: tf.Tensor
) -> tf.Tensor:
    """Packed code-point offsets of [texts, (tokens)] → the same in bytes of the input text:
    where its code points start (`byte_starts`, flat as `cps.values`; an invalid sequence's
    U+FFFD starts where the sequence does), the text's end at its size in bytes."""
    start, end = unpack_offsets(offsets.values)
    row = row_ids(offsets)
    first = tf.gather(tf.cast(cps.row_starts(), tf.int32), row)
    length = tf.gather(tf.cast(cps.row_lengths(), tf.int32), row)
    size = tf.gather(tf.cast(sizes, tf.int32), row)
    last = tf.maximum(length - 1, 0)

    def to_bytes(position: tf.Tensor) -> tf.Tensor:
        at = tf.gather(byte_starts, first + tf.minimum(position, last))
        return tf.where(position < length, tf.cast(at, tf.int32), size)

    return pack_offsets(to_bytes(start), to_bytes(end))


def part_alignments(
    parts: tf.RaggedTensor,
    starts: tf.Tensor,
    is_text: tf.Tensor,
    cps: tf.RaggedTensor,
    alignment: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """For rows cut into parts (text between added tokens, and the tokens): the alignments of
    the text parts' code points, and each part's offsets as a token, [parts, 2] int64.

    `starts`: each part's first code point in its row. Parts tile their row but for the
    whitespace an lstrip/rstrip token takes from the text beside it, which is the token's:
    a token spans from the end of the text part before it to the start of the one after. Its
    offsets' second column counts that whitespace (before << 32 | after): ByteLevel's offset
    trimming sees it as part of the token (`OffsetTrimmer`).
    """
    length = tf.strings.length(parts.values, unit="UTF8_CHAR")
    row_start = tf.gather(tf.cast(cps.row_starts(), tf.int32), row_ids(parts))
    text_length = tf.where(is_text, length, 0)
    part, within = expand(text_length)
    text_alignment = tf.gather(alignment, tf.gather(row_start + starts, part) + within)
    begin = previous(starts + length, 0)
    end = following(starts, 0)
    safe = tf.maximum(tf.size(cps.values) - 1, 0)
    first = tf.gather(alignment[:, 0], tf.clip_by_value(row_start + begin, 0, safe))
    last = tf.gather(alignment[:, 1], tf.clip_by_value(row_start + end - 1, 0, safe))
    taken = pack_offsets(starts - begin, end - starts - length)
    return text_alignment, tf.stack([pack_offsets(first, last), taken], axis=1)


def space_counts(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per id: how many spaces (Ġ, or whitespace as Rust's char::is_whitespace) its token
    starts and ends with."""
    whitespace = whitespace_classes()
    leading = np.zeros(len(tokens), np.int32)
    trailing = np.zeros(len(tokens), np.int32)
    for index, token in enumerate(tokens):
        spaces = [c == BYTE_LEVEL_SPACE or bool(whitespace[ord(c)]) for c in token]
        leading[index] = next((i for i, space in enumerate(spaces) if not space), len(spaces))
        trailing[index] = next(
            (i for i, space in enumerate(reversed(spaces)) if not space), len(spaces)
        )
    return leading, trailing


def token_strings(document: dict) -> list[str]:
    """Every id's token as tokenizers' `id_to_token` has it ("" for ids without one)."""
    reference = Tokenizer.from_str(json.dumps(document))
    size = max(reference.get_vocab(with_added_tokens=True).values(), default=-1) + 1
    return [reference.id_to_token(index) or "" for index in range(size)]


def trimming_processors(component: dict | None) -> list[bool]:
    """The `add_prefix_space` of every post-processor that trims offsets, in order."""
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [flag for child in component["processors"] for flag in trimming_processors(child)]
    if component.get("type") in TRIMMING and component.get("trim_offsets", True):
        return [bool(component.get("add_prefix_space", True))]
    return []


class OffsetTrimmer:
    """The ByteLevel / RobertaProcessing `trim_offsets` step (tokenizers' `process_offsets`):
    a token's leading and trailing spaces leave its offsets, except the one space a first
    token got from `add_prefix_space`."""

    def __init__(self, component: dict | None, document: dict) -> None:
        self.prefix_spaces = trimming_processors(component)
        self.leading = self.trailing = self.lengths = None
        if self.prefix_spaces:
            tokens = token_strings(document)
            self.leading, self.trailing = space_counts(tokens)
            self.lengths = np.array([len(token) for token in tokens], np.int32)

    def __bool__(self) -> bool:
        return bool(self.prefix_spaces)

    def __call__(
        self,
        ids: tf.Tensor,
        start: tf.Tensor,
        end: tf.Tensor,
        first: tf.Tensor,
        taken: tuple[tf.Tensor, tf.Tensor],
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Trimmed (start, end) of tokens `ids`; `first`: each token is its sequence's first;
        `taken`: the whitespace an added token took before and after its content, which is
        part of its string (a token all of whitespace is all leading and trailing spaces)."""
        known = (ids >= 0) & (ids < len(self.leading))
        safe = tf.where(known, ids, 0)
        lead, trail, size = (
            tf.where(known, tf.gather(table, safe), 0)
            for table in (self.leading, self.trailing, self.lengths)
        )
        total = taken[0] + size + taken[1]
        blank = tf.equal(lead, size)
        leading = tf.where(blank, total, taken[0] + lead)
        trailing = tf.where(blank, total, taken[1] + trail)
        for add_prefix_space in self.prefix_spaces:
            is_first = first | tf.equal(start, 0)
            cut = leading
            if add_prefix_space:
                cut = tf.where(is_first & tf.equal(leading, 1), 0, leading)
            start = tf.where(cut > 0, tf.minimum(start + cut, end), start)
            trims = (trailing > 0) & (end >= trailing)
            end = tf.where(trims, tf.maximum(end - trailing, start), end)
        return start, end
