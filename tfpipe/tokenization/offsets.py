"""Token offsets: where each token came from in the original text, as tokenizers computes them.

Normalizers and pre-tokenizers carry each code point's alignment ([start, end) in the
original text) and models place every token in its word (`tokenize_with_spans`); a token's
offsets are then its first code point's start and its last one's end, as tokenizers'
`NormalizedString` converts a normalized range. The ByteLevel and RobertaProcessing
post-processors then trim spaces off tokens' offsets (`OffsetTrimmer`). The rules:
docs/how-it-works.md#offsets.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

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


def part_alignments(
    parts: tf.RaggedTensor,
    starts: tf.Tensor,
    is_text: tf.Tensor,
    cps: tf.RaggedTensor,
    alignment: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """For rows cut into parts (text between added tokens, and the tokens): the alignments of
    the text parts' code points, and each part's packed offsets (used for the tokens).

    `starts`: each part's first code point in its row. Parts tile their row, so a token,
    with any whitespace its lstrip/rstrip took from the text beside it, spans from the end
    of the text part before it to the start of the one after it.
    """
    length = tf.strings.length(parts.values, unit="UTF8_CHAR")
    row_start = tf.gather(tf.cast(cps.row_starts(), tf.int32), row_ids(parts))
    text_length = tf.where(is_text, length, 0)
    part, within = expand(text_length)
    text_alignment = tf.gather(alignment, tf.gather(row_start + starts, part) + within)
    begin = row_start + previous(starts + length, 0)
    end = row_start + following(starts, 0)
    safe = tf.maximum(tf.size(cps.values) - 1, 0)
    first = tf.gather(alignment[:, 0], tf.clip_by_value(begin, 0, safe))
    last = tf.gather(alignment[:, 1], tf.clip_by_value(tf.maximum(end - 1, begin), 0, safe))
    return text_alignment, pack_offsets(first, last)


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

    def __init__(self, component: dict | None, tokens: list[str]) -> None:
        self.prefix_spaces = trimming_processors(component)
        self.leading, self.trailing = space_counts(tokens) if self.prefix_spaces else (None, None)

    def __bool__(self) -> bool:
        return bool(self.prefix_spaces)

    def __call__(
        self, ids: tf.Tensor, start: tf.Tensor, end: tf.Tensor, first: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Trimmed (start, end) of tokens `ids`; `first`: each token is its sequence's first."""
        known = (ids >= 0) & (ids < len(self.leading))
        safe = tf.where(known, ids, 0)
        leading = tf.where(known, tf.gather(self.leading, safe), 0)
        trailing = tf.where(known, tf.gather(self.trailing, safe), 0)
        for add_prefix_space in self.prefix_spaces:
            is_first = first | tf.equal(start, 0)
            lead = leading
            if add_prefix_space:
                lead = tf.where(is_first & tf.equal(leading, 1), 0, leading)
            start = tf.where(lead > 0, tf.minimum(start + lead, end), start)
            trims = (trailing > 0) & (end >= trailing)
            end = tf.where(trims, tf.maximum(end - trailing, start), end)
        return start, end
