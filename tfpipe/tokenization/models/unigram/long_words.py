"""Words past `LONG_WORD_CHARS`: segmented exactly as the reference, from a checked guess.

A guess from block passes (`_block_guess`), its path sums added in the reference's order
(`path_sums` over `piece_tree`), every position's choice checked against them; a guess off
somewhere is repaired `LONG_WORD_REPAIRS` times, then left to the stepwise pass. Why a
checked guess is exact: docs/how-it-works.md#long-unigram-words-checked-block-passes.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.models.unigram.viterbi import best_scores, choose, pass_layout
from tfpipe.tokenization.pointer_doubling import climb, reached
from tfpipe.tokenization.ragged_ops import bincount, repeat_range, select

# Words longer than this are segmented apart, from checked block passes; blocks hold this many
# positions each.
LONG_WORD_CHARS = 2048
BLOCK_CHARS = 512
LONG_WORD_REPAIRS = 4


def checked_pieces(lattice: PieceLattice, words: tf.RaggedTensor) -> tuple[tuple, tf.Tensor]:
    """(pieces, checked): the pieces (word, start, stop, id) of the words that pass the
    check, in text order, and per word whether it passed."""
    lengths = tf.cast(words.row_lengths(), tf.int32)
    count = tf.size(lengths)
    positions = tf.reduce_sum(lengths)
    word, end, size, ids, scores = lattice(words)
    # Flat indices: word w's position e (1 … length) is position_base[w] + e - 1; its
    # node e (0 … length) is position_base[w] + w + e.
    position_base = tf.cumsum(lengths, exclusive=True)
    at = tf.gather(position_base, word) + end - 1
    start_node = at + word + 1 - size
    position_word = repeat_range(lengths)
    position_node = tf.range(positions) + position_word + 1
    position = tf.range(positions) - tf.gather(position_base, position_word) + 1

    def check(attempt, sizes, _):
        guessed = tf.equal(tf.gather(sizes, at), size)
        gain = tf.math.unsorted_segment_max(tf.where(guessed, scores, -np.inf), at, positions)
        gain = tf.scatter_nd(position_node[:, None], gain, [positions + count])
        sums = path_sums(*piece_tree(lengths, sizes), gain)
        reach = tf.gather(sums, start_node) + scores
        top = tf.math.unsorted_segment_max(reach, at, positions)
        reaches_top = tf.equal(reach, tf.gather(top, at))
        chosen = tf.math.unsorted_segment_max(tf.where(reaches_top, size, -1), at, positions)
        agrees = tf.equal(top, tf.gather(sums, position_node)) & tf.equal(chosen, sizes)
        checked = tf.math.unsorted_segment_min(tf.cast(agrees, tf.int32), position_word, count)
        return attempt + 1, chosen, tf.equal(checked, 1)

    _, sizes, checked = tf.while_loop(
        lambda attempt, _, checked: ~tf.reduce_all(checked) & (attempt <= LONG_WORD_REPAIRS),
        check,
        (
            tf.constant(0),
            _block_guess(lattice, lengths, position_word, position, word, end, size, ids, scores),
            tf.zeros([count], tf.bool),
        ),
    )
    piece_id = tf.math.unsorted_segment_max(
        tf.where(tf.equal(tf.gather(sizes, at), size), ids, -1), at, positions
    )
    _, on_path = piece_tree(lengths, sizes)
    kept = tf.gather(on_path, position_node) & tf.gather(checked, position_word)
    stop = select(position, kept)
    pieces = (
        select(position_word, kept),
        stop - select(sizes, kept),
        stop,
        select(piece_id, kept),
    )
    return pieces, checked


def _block_guess(
    lattice: PieceLattice, lengths, position_word, position, word, end, size, ids, scores
) -> tf.Tensor:
    """Per position of long words (flat: `position` 1 … length of word `position_word`),
    the length of the piece a pass over its block chooses to end there."""
    overlap = 4 * lattice.longest_piece
    blocks = (lengths + BLOCK_CHARS - 1) // BLOCK_CHARS
    block_base = tf.cumsum(blocks, exclusive=True)
    block_word = repeat_range(blocks)
    within = tf.range(tf.size(block_word)) - tf.gather(block_base, block_word)
    block_start = tf.maximum(within * BLOCK_CHARS - overlap, 0)
    block_length = (
        tf.minimum((within + 1) * BLOCK_CHARS, tf.gather(lengths, block_word)) - block_start
    )
    # Each piece in the block its end falls in, and in the next one if it starts there.
    home_within = (end - 1) // BLOCK_CHARS
    home = tf.gather(block_base, word) + home_within
    following = tf.minimum(home + 1, tf.size(block_word) - 1)
    also = (home_within + 1 < tf.gather(blocks, word)) & (
        end - size >= tf.gather(block_start, following)
    )
    block = tf.concat([home, select(following, also)], axis=0)
    end, size, ids, scores = (
        tf.concat([t, select(t, also)], axis=0) for t in (end, size, ids, scores)
    )
    end = end - tf.gather(block_start, block)
    # Blocks sorted longest first, as the pass wants them.
    order = tf.argsort(block_length, direction="DESCENDING", stable=True)
    rank = tf.math.invert_permutation(order)
    layout = pass_layout(block_length)
    block = tf.gather(rank, block)
    best = best_scores(lattice.longest_piece, layout, block, end, size, scores)
    chosen, _ = choose(lattice.id_bits, best, layout, block, end, size, ids, scores)
    home = tf.gather(block_base, position_word) + (position - 1) // BLOCK_CHARS
    local = position - tf.gather(block_start, home)
    return tf.gather(chosen, tf.gather(layout.step_offsets, local - 1) + tf.gather(rank, home))


def piece_tree(lengths, sizes) -> tuple[tf.Tensor, tf.Tensor]:
    """(parent, on_path) per node of long words (word w's positions 0 … length, flat):
    where the piece chosen to end there starts (a word's position 0 is its own parent),
    given the piece lengths `sizes` per position 1 … length (flat), and whether the
    node is on its word's path."""
    node_word = repeat_range(lengths + 1)
    node = tf.range(tf.size(node_word))
    position = node - tf.gather(tf.cumsum(lengths + 1, exclusive=True), node_word)
    flat = tf.maximum(node - node_word - 1, 0)
    parent = tf.where(position > 0, node - tf.gather(sizes, flat), node)
    ends = tf.cast(tf.equal(position, tf.gather(lengths, node_word)), tf.int32)
    return parent, reached(ends, parent)


def path_sums(parent, on_path, gain) -> tf.Tensor:
    """Per node of a piece tree (`piece_tree`), its path's score added up as the
    reference does: f64, in path order from the word's position 0, `gain` being the
    score of the piece ending at each node (0 at position 0).

    The tree is cut into chains, and each chain is one cumsum from its start's sum.
    Chains wait for the chain they start from: a level at a time, chains of similar
    lengths together in a matrix.
    """
    nodes = tf.size(parent)
    node = tf.range(nodes)
    inner = tf.not_equal(parent, node)
    # A chain goes on to the child on the word's path, else to the furthest child: the
    # path is one chain, and few chains hang off others.
    key = tf.where(on_path, nodes + node, node)
    follows = tf.math.unsorted_segment_max(tf.where(inner, key, -1), parent, nodes)
    head = ~inner | (tf.gather(follows, parent) != key)
    chain, rank = climb(tf.where(head, node, parent), tf.cast(~head, tf.int32))
    chain_length = bincount(chain, nodes)
    above = head & inner
    _, level = climb(tf.where(above, tf.gather(chain, parent), node), tf.cast(above, tf.int32))
    # Chains in order of level, then of length's bit length, then of start.
    heads = tf.cast(tf.where(head)[:, 0], tf.int32)
    head_length = tf.gather(chain_length, heads)
    group = tf.gather(level, heads) * 32 + _bit_length(head_length)
    order = tf.argsort(group, stable=True)
    heads, head_length, group = (tf.gather(t, order) for t in (heads, head_length, group))
    offset = tf.cumsum(head_length, exclusive=True)
    slot = tf.gather(tf.scatter_nd(heads[:, None], offset, [nodes]), chain) + rank
    ordered = tf.scatter_nd(slot[:, None], node, [nodes])
    groups, _, group_size = tf.unique_with_counts(group, out_idx=tf.int32)
    group_start = tf.cumsum(group_size, exclusive=True)

    def fold_group(index, sums):
        first, count = group_start[index], group_size[index]
        members = tf.range(first, first + count)
        lengths = tf.gather(head_length, members)
        width = tf.reduce_max(lengths)
        column = tf.range(width)
        filled = column[None, :] < lengths[:, None]
        slots = tf.gather(offset, members)[:, None] + column
        at = tf.gather(ordered, tf.minimum(slots, nodes - 1))
        start = tf.gather(sums, tf.gather(parent, tf.gather(heads, members)))
        steps = tf.where(filled, tf.gather(gain, at), tf.constant(0.0, tf.float64))
        path = tf.cumsum(tf.concat([start[:, None], steps], axis=1), axis=1)[:, 1:]
        written = tf.where(filled)
        return index + 1, tf.tensor_scatter_nd_update(
            sums, tf.gather_nd(at, written)[:, None], tf.gather_nd(path, written)
        )

    _, sums = tf.while_loop(
        lambda index, _: index < tf.size(groups),
        fold_group,
        (tf.constant(0), tf.zeros([nodes], tf.float64)),
    )
    return sums


def _bit_length(values: tf.Tensor) -> tf.Tensor:
    """Bits of each positive int32 (a log2 bucket)."""
    bits = tf.zeros_like(values)
    for shift in (16, 8, 4, 2, 1):
        wide = tf.bitwise.right_shift(values, bits + shift) > 0
        bits = tf.where(wide, bits + shift, bits)
    return bits + 1
