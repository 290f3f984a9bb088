"""The stepwise Viterbi pass over a batch of words, exactly as `tokenizers` makes it
(f64 sums, strictly greater replaces, so ties go to the earliest start).

Words sorted longest first, a loop over end positions doing only dense arithmetic on [words,
window] matrices of scores, choices found for all positions at once, best paths marked by
pointer doubling: docs/how-it-works.md#unigram-modelsunigram.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfpipe.tokenization.models.unigram.lattice import PieceLattice
from tfpipe.tokenization.pointer_doubling import reached
from tfpipe.tokenization.ragged_ops import bincount, repeat_range, select
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, item, push, split

# End positions run one by one before the loop, each over the words still running there.
FIRST_STEPS = 8
# End positions per later turn of the loop (a power of two: turns are found by shifts).
VITERBI_UNROLL = 8
UNROLL_BITS = VITERBI_UNROLL.bit_length() - 1


def viterbi(lattice: PieceLattice, words: tf.RaggedTensor):
    """Best piece ending at every position of every word (words sorted longest first).

    Returns the chosen piece length and id per (end position, word) entry of the pass's
    layout (`PassLayout`), and where each end position's entries start in it.
    """
    layout = pass_layout(tf.cast(words.row_lengths(), tf.int32))
    word, end, size, ids, scores = lattice(words)
    best = best_scores(lattice.longest_piece, layout, word, end, size, scores)
    piece_length, piece_id = choose(lattice.id_bits, best, layout, word, end, size, ids, scores)
    return piece_length, piece_id, layout.step_offsets


class PassLayout(NamedTuple):
    """Where the pass keeps each (end position, word), for words sorted longest first.

    Word w's entry for end position e (1-based) is `step_offsets[e - 1] + w`; an end
    position's entries are the rows of the words it runs over, position-major. The first
    `FIRST_STEPS` positions run before the loop, each over the words still running there
    (`first_words`), so the many words that end in them hold no entry past their end. Each
    turn of the loop takes the next `VITERBI_UNROLL` positions over the words running at its
    first one (`turn_words`, one per turn; none for words no longer than the first steps):
    words ending inside a turn get entries past their end, which nothing reads.
    """

    first_words: tf.Tensor
    turn_words: tf.Tensor
    step_offsets: tf.Tensor
    entries: tf.Tensor


def pass_layout(lengths: tf.Tensor) -> PassLayout:
    """The layout of the pass over words of `lengths` (sorted longest first)."""
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    # running[e]: the words at least e characters long (e = 0 … longest, then 0s).
    running = tf.cumsum(
        bincount(lengths, tf.maximum(longest, FIRST_STEPS) + VITERBI_UNROLL + 1), reverse=True
    )
    turns = (tf.maximum(longest - FIRST_STEPS, 0) + VITERBI_UNROLL - 1) // VITERBI_UNROLL
    turn_words = tf.gather(running, tf.range(turns) * VITERBI_UNROLL + FIRST_STEPS + 1)
    # Every position: the first steps', then the turns' (the last turn runs past the longest word).
    position = tf.range(FIRST_STEPS + turns * VITERBI_UNROLL)
    turn_start = FIRST_STEPS + tf.bitwise.left_shift(
        tf.bitwise.right_shift(position - FIRST_STEPS, UNROLL_BITS), UNROLL_BITS
    )
    step_words = tf.gather(running, tf.where(position < FIRST_STEPS, position, turn_start) + 1)
    return PassLayout(
        running[1 : FIRST_STEPS + 1],
        turn_words,
        tf.cumsum(step_words, exclusive=True),
        tf.reduce_sum(step_words),
    )


def choose(id_bits: int, best, layout: PassLayout, word, end, size, ids, scores):
    """(length, id) of the piece chosen to end at each (end position, word) entry of
    `layout`: the longest among those reaching its best score (ties go to the
    earliest start, first seen by the reference). Sums are recomputed exactly as the
    pass made them, so equality is exact."""
    step_offsets = layout.step_offsets
    start = end - size
    before = tf.where(
        start > 0,
        tf.gather(best, tf.gather(step_offsets, tf.maximum(start - 1, 0)) + word),
        tf.constant(0.0, tf.float64),
    )
    at = tf.gather(step_offsets, end - 1) + word
    is_best = tf.equal(before + scores, tf.gather(best, at))
    keys = tf.bitwise.left_shift(size, id_bits) | ids
    chosen = tf.math.unsorted_segment_max(tf.where(is_best, keys, -1), at, layout.entries)
    piece_id = tf.bitwise.bitwise_and(chosen, (1 << id_bits) - 1)
    return tf.bitwise.right_shift(chosen, id_bits), piece_id


def best_scores(window: int, layout: PassLayout, word, end, size, scores) -> tf.Tensor:
    """The best path score to every (end position, word) entry of `layout`.

    Piece scores are laid out densely first, a [words, window] matrix per end position
    (the lowest f64 where no piece of that length ends there: never a winner, as every
    position has a one-character candidate), so that each step of the loop over end
    positions is a few dense ops: add the best scores of the last `window` (longest piece)
    positions, take the row maxima. Every candidate is still best[start] + score in f64
    and a max does not depend on order, so the sums are the reference's. The first
    `FIRST_STEPS` positions run before the loop, each over the words still running there;
    a turn of the loop takes `VITERBI_UNROLL` steps over the words running at its first (a
    long word makes many steps over few words, where the loop's own ops are the cost): its
    constants are made once and every step is four ops (`PassLayout`).
    """
    at = tf.gather(layout.step_offsets, end - 1) + word
    # A segment max lays the scores out: a scatter costs several times more on CPU.
    dense = tf.reshape(
        tf.math.unsorted_segment_max(scores, at * window + size - 1, layout.entries * window),
        [-1, window],
    )
    first_words = layout.first_words
    # The first steps' position matrices, and the turns' rows.
    *first, later = tf.split(dense, tf.concat([first_words, [-1]], 0), num=FIRST_STEPS + 1)
    turn_words = layout.turn_words
    rows = split(later, turn_words * VITERBI_UNROLL, [-1, window])
    shapes = tf.stack([turn_words, tf.fill(tf.shape(turn_words), window)], axis=1)
    sizes = split(tf.reshape(shapes, [-1]), tf.fill(tf.shape(turn_words), 2), [2])
    turns = tf.size(turn_words)

    def steps(best, step_scores, step_shapes=None):
        """The positions of a turn, each shrinking `best` to its shape if given.

        best[w, j]: best score of word w's first (position - j) characters. The constants
        are made in the turn: captured from outside the loop, their values would be unknown
        to its shape inference."""
        origin, kept, axis = tf.constant([0, 0]), tf.constant([-1, window - 1]), tf.constant(1)
        tops = []
        for index, scores_here in enumerate(step_scores):
            if step_shapes is not None and index > 0:
                best = tf.slice(best, origin, step_shapes[index])
            top = tf.reduce_max(scores_here + best, axis=axis, keepdims=True)
            best = tf.concat([top, tf.slice(best, origin, kept)], axis)
            tops.append(top)
        return best, tf.concat(tops, 0)

    first_shapes = tf.unstack(
        tf.stack([first_words, tf.fill([FIRST_STEPS], -1)], axis=1), num=FIRST_STEPS
    )
    best = tf.zeros([first_words[0], window], tf.float64)
    best, first_best = steps(best, first, first_shapes)

    def turn(index, best, best_out):
        turn_scores = tf.reshape(
            item(rows, index, tf.float64, [-1, window]),
            tf.constant([VITERBI_UNROLL, -1, window]),
        )
        best = tf.slice(best, tf.constant([0, 0]), item(sizes, index, tf.int32, [2]))
        best, tops = steps(best, tf.unstack(turn_scores, num=VITERBI_UNROLL))
        return index + 1, best, push(best_out, tops)

    _, _, best_out = tf.while_loop(
        lambda index, *_: index < turns,
        turn,
        (tf.constant(0), best, empty_list(tf.float64, [-1, 1])),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, window]), HANDLE_SHAPE),
    )
    later_best = concat(best_out, tf.float64, [-1, 1])
    return tf.reshape(tf.concat([first_best, later_best], 0), [-1])


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
