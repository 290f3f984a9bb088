"""The stepwise Viterbi pass over a batch of words, exactly as `tokenizers` makes it
(f64 sums, strictly greater replaces, so ties go to the earliest start).

Words sorted longest first, a loop over end positions doing only dense arithmetic on [words,
window] matrices of scores, choices found for all positions at once, best paths marked by
pointer doubling: docs/how-it-works.md#unigram-modelsunigram.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.pointer_doubling import reached
from tfpipe.tokenization.ragged_ops import bincount, repeat_range, select
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, item, push, split

VITERBI_UNROLL = 4


def viterbi(lattice: PieceLattice, words: tf.RaggedTensor):
    """Best piece ending at every position of every word (words sorted longest first).

    Returns the chosen piece length and id per (end position, word), flat in order of end
    position then word, and where each end position's entries start in that order.
    """
    longest, running, step_offsets = pass_layout(tf.cast(words.row_lengths(), tf.int32))
    word, end, size, ids, scores = lattice(words)
    best = best_scores(
        lattice.longest_piece, longest, running, step_offsets, word, end, size, scores
    )
    piece_length, piece_id = choose(
        lattice.id_bits,
        best, step_offsets, word, end, size, ids, scores, tf.reduce_sum(running[1:]),
    )
    return piece_length, piece_id, step_offsets


def pass_layout(lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(longest, running, step_offsets) of words sorted longest first: `running[e]` words
    are at least e characters long (e = 0 … longest), and the entries of end position e + 1
    start at `step_offsets[e]` in the flat (end position, word) order of the Viterbi pass."""
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    running = tf.cumsum(bincount(lengths, longest + 1), reverse=True)
    return longest, running, tf.cumsum(running[1:], exclusive=True)


def choose(id_bits: int, best, step_offsets, word, end, size, ids, scores, entries):
    """(length, id) of the piece chosen to end at each (end position, word), flat in
    that order: the longest among those reaching its best score (ties go to the
    earliest start, first seen by the reference). Sums are recomputed exactly as the
    pass made them, so equality is exact."""
    start = end - size
    before = tf.where(
        start > 0,
        tf.gather(best, tf.gather(step_offsets, tf.maximum(start - 1, 0)) + word),
        tf.constant(0.0, tf.float64),
    )
    at = tf.gather(step_offsets, end - 1) + word
    is_best = tf.equal(before + scores, tf.gather(best, at))
    keys = tf.bitwise.left_shift(size, id_bits) | ids
    chosen = tf.math.unsorted_segment_max(tf.where(is_best, keys, -1), at, entries)
    piece_id = tf.bitwise.bitwise_and(chosen, (1 << id_bits) - 1)
    return tf.bitwise.right_shift(chosen, id_bits), piece_id


def best_scores(
    window: int, longest, running, step_offsets, word, end, size, scores
) -> tf.Tensor:
    """The best path score to every (end position, word), flat in that order.

    Piece scores are laid out densely first, a [words, window] matrix per end position
    (the lowest f64 where no piece of that length ends there: never a winner, as every
    position has a one-character candidate), so that each step of the loop over end
    positions is a few dense ops: add the best scores of the last `window` (longest piece)
    positions, take the row maxima. Every candidate is still best[start] + score in f64
    and a max does not depend on order, so the sums are the reference's. Steps are
    unrolled `VITERBI_UNROLL` at a time (a long word makes many steps over few words,
    where the loop's own ops are the cost), their maxima kept once per turn.
    """
    counts = running[1:]
    at = tf.gather(step_offsets, end - 1) + word
    # A segment max lays the scores out: a scatter costs several times more on CPU.
    dense = tf.math.unsorted_segment_max(
        scores, at * window + size - 1, tf.reduce_sum(counts) * window
    )
    counts = tf.concat([counts, tf.zeros([VITERBI_UNROLL], tf.int32)], 0)
    rows = split(tf.reshape(dense, [-1, window]), counts, [-1, window])
    # Per step, the [words, window] shape of its scores: its words are the first counts[step]
    # (words run longest first), so each step slices the last one's.
    shapes = tf.stack([counts, tf.fill(tf.shape(counts), window)], axis=1)

    def step(index, best):
        # best[w, j]: best score of word w's first (index - j) characters.
        older = tf.slice(best, [0, 0], shapes[index])
        top = tf.reduce_max(
            item(rows, index, tf.float64, [-1, window]) + older, axis=1, keepdims=True
        )
        return tf.concat([top, tf.slice(older, [0, 0], [-1, window - 1])], 1), top

    def steps(index, best, best_out):
        tops = []
        for offset in range(VITERBI_UNROLL):
            best, top = step(index + offset, best)
            tops.append(top)
        return index + VITERBI_UNROLL, best, push(best_out, tf.concat(tops, 0))

    _, _, best_out = tf.while_loop(
        lambda index, *_: index < longest,
        steps,
        (
            tf.constant(0),
            tf.zeros([running[0], window], tf.float64),
            empty_list(tf.float64, [-1, 1]),
        ),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, window]), HANDLE_SHAPE),
    )
    return tf.reshape(concat(best_out, tf.float64, [-1, 1]), [-1])


def backtrack(lengths, piece_length, piece_id, step_offsets):
    """The chosen pieces of every word: the positions its best path goes through.

    Every position of a word (0 … length) is a node pointing to where the piece chosen
    to end there starts; the path is what the word's end reaches along these pointers
    (`reached`: no loop runs once per piece). Returns (word, start, stop, id) per
    piece, in text order.
    """
    nodes = lengths + 1
    node_word = repeat_range(nodes)
    node_count = tf.size(node_word)
    position = tf.range(node_count) - tf.gather(tf.cumsum(nodes, exclusive=True), node_word)
    inner = position > 0
    chosen_at = tf.where(
        inner,
        tf.gather(step_offsets, tf.maximum(position - 1, 0)) + node_word,
        tf.size(piece_length),
    )
    size = tf.gather(tf.concat([piece_length, [0]], 0), chosen_at)
    ids = tf.gather(tf.concat([piece_id, [0]], 0), chosen_at)
    at_end = tf.cast(tf.equal(position, tf.gather(lengths, node_word)), tf.int32)
    on_path = reached(at_end, tf.range(node_count) - size) & inner
    stop = select(position, on_path)
    return (
        select(node_word, on_path),
        stop - select(size, on_path),
        stop,
        select(ids, on_path),
    )
