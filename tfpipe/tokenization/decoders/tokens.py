"""Helpers over a batch of token strings, ragged [rows, (tokens)], as decoders see them."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import positions_in_rows, row_ids

# Each byte as a one-byte string, gathered to rebuild byte sequences.
BYTE_STRINGS = [bytes([b]) for b in range(256)]


def is_first(tokens: tf.RaggedTensor) -> tf.Tensor:
    """True for each row's first token."""
    return tf.equal(positions_in_rows(tokens), 0)


def is_last(tokens: tf.RaggedTensor) -> tf.Tensor:
    """True for each row's last token."""
    lengths = tf.cast(tokens.row_lengths(), tf.int32)
    return tf.equal(positions_in_rows(tokens) + 1, tf.gather(lengths, row_ids(tokens)))


def starts_with(values: tf.Tensor, prefix: str) -> tf.Tensor:
    """Whether each string starts with `prefix` (compared as UTF-8 bytes)."""
    return tf.equal(tf.strings.substr(values, 0, len(prefix.encode())), prefix)


def replace_literal(values: tf.Tensor, old: str, new: str) -> tf.Tensor:
    """Every non-overlapping `old`, left to right, by `new`, as Rust's str::replace."""
    return tf.strings.regex_replace(values, _re2_literal(old), new.replace("\\", "\\\\"))


def replace_in_order(values: tf.Tensor, replacements: tuple[tuple[str, str], ...]) -> tf.Tensor:
    """Each (old, new) of `replacements` applied in turn, as chained `str.replace` calls."""
    for old, new in replacements:
        values = replace_literal(values, old, new)
    return values


def without_prefix(values: tf.Tensor, prefix: str) -> tf.Tensor:
    """Each string with `prefix` removed from its start, where it starts with it."""
    return tf.strings.regex_replace(values, "^" + _re2_literal(prefix), "", replace_global=False)


def joined_rows(tokens: tf.RaggedTensor, separator: str = "") -> tf.Tensor:
    """[rows] strings: each row's tokens joined."""
    return tf.strings.unsorted_segment_join(
        tokens.values, row_ids(tokens), tokens.nrows(out_type=tf.int32), separator=separator
    )


def _re2_literal(text: str) -> str:
    r"""`text` as an RE2 pattern matching it literally (\Q…\E cannot hold \E)."""
    return "".join(f"\\x{{{ord(c):x}}}" for c in text)
