"""The exact early stop inside long words under right truncation (a `token_limit`).

The Viterbi pass is causal: on a word's first `kept` characters it chooses exactly what it
chooses there on the whole word. Where the best paths to the last `longest piece` positions
all pass through one position, the whole word's path does too, so the pieces before it are
settled. A long word is therefore segmented from its first `kept` characters (`cut_length`:
enough for `token_limit` pieces plus `settle_chars`); if its settled pieces reach
`token_limit` tokens it keeps them, else it is segmented whole. That bounds the cost of one
huge word without whitespace.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.ragged_ops import expand

# How many longest pieces before a cut a long word's pieces may settle.
SETTLE_PIECES = 4


def settle_chars(longest_piece: int) -> int:
    """How far before a cut a long word's pieces may settle."""
    return SETTLE_PIECES * longest_piece


def cut_length(longest_piece: int, token_limit: int) -> int:
    """The characters of a long word segmented under a `token_limit`."""
    return token_limit * longest_piece + settle_chars(longest_piece)


def settled_pieces(
    lattice: PieceLattice,
    lengths, piece_length, step_offsets, word, stop, ids, kept: int, token_limit: int,
):
    """(settled, keep): per word whether its pieces are exact and enough; per piece
    whether it stays. Words shorter than `kept` were not cut: all theirs stay.

    A cut word settles at its last piece boundary at least `settle_chars` before the cut,
    if the best paths to the cut's last `longest piece` positions all pass through it.
    Trailing unknown pieces are dropped: they might fuse with what the cut removed.
    """
    longest_piece = lattice.longest_piece
    count = tf.size(lengths)
    cut = lengths >= kept
    piece_cut = tf.gather(cut, word)
    candidate = piece_cut & (stop <= kept - settle_chars(longest_piece))
    settle_at = tf.math.unsorted_segment_max(tf.where(candidate, stop, 0), word, count)
    meet = _paths_meet(
        longest_piece, piece_length, step_offsets, tf.where(cut)[:, 0], settle_at, kept
    )
    known = piece_cut & (stop <= tf.gather(settle_at, word)) & (ids != lattice.unk_id)
    known_stop = tf.math.unsorted_segment_max(tf.where(known, stop, 0), word, count)
    tokens = tf.math.unsorted_segment_sum(tf.cast(known, tf.int32), word, count)
    settled = ~cut | (meet & (tokens >= token_limit))
    keep = ~piece_cut | (stop <= tf.gather(known_stop, word))
    return settled, keep


def _paths_meet(longest_piece: int, piece_length, step_offsets, cut_words, settle_at, kept: int):
    """Per word: whether the best paths to its last `longest piece` positions (of
    `kept`) all pass through `settle_at` (always true for words not cut).

    Pointer doubling over each cut word's positions after `settle_at`: a position's
    ancestor jumps to its ancestor's ancestor until it is at or before `settle_at`.
    """
    cut_words = tf.cast(cut_words, tf.int32)
    at = tf.gather(settle_at, cut_words)
    span = kept - at
    owner, within = expand(span)
    word = tf.gather(cut_words, owner)
    settle = tf.gather(at, owner)
    position = settle + 1 + within
    base = tf.gather(tf.cumsum(span, exclusive=True), owner)
    size = tf.gather(piece_length, tf.gather(step_offsets, position - 1) + word)
    ancestor = position - size
    for _ in range((settle_chars(longest_piece) + longest_piece).bit_length()):
        above = ancestor > settle
        jump = tf.gather(ancestor, base + tf.maximum(ancestor - settle - 1, 0))
        ancestor = tf.where(above, jump, ancestor)
    misses = (position > kept - longest_piece) & (ancestor != settle)
    missed = tf.math.unsorted_segment_max(tf.cast(misses, tf.int32), word, tf.size(settle_at))
    return missed == 0
