"""The lattice: every vocabulary piece found in the words, from a trie of the pieces.

From every start, candidates grow one character at a time down the trie (the reference's trie
prefix search), one vectorised integer lookup per piece length, while some piece is still that
long. A character starting no single-character piece is an unknown candidate instead, scored
`min_score - 10` (the reference's kUnkPenalty).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import row_ids, select
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push

UNK_PENALTY = 10.0
CODE_POINT_BITS = 21
# Trie node 0 is the dead end every missing edge leads to; 1 is the empty prefix.
TRIE_ROOT = 1
# Follows every word in the lattice's layout: above every code point, so no edge takes it.
SEPARATOR = (1 << CODE_POINT_BITS) - 1


class PieceLattice(tf.Module):
    """The vocabulary's pieces (a trie) and scores: finds and scores the pieces of words."""

    def __init__(self, ids: dict[str, int], scores: np.ndarray, unk_id: int) -> None:
        super().__init__(name="piece_lattice")
        self.scores = tf.constant(scores, tf.float64)
        self.unk_id = unk_id
        self.unk_score = float(scores.min()) - UNK_PENALTY
        self.longest_piece = max(len(token) for token in ids)
        # The Viterbi pass packs a piece's (length, id) into one int32, length << id_bits | id
        # (shifts: integer division costs several times more per value).
        self.id_bits = max(1, (len(scores) - 1).bit_length())
        if (self.longest_piece + 1) << self.id_bits >= 2**31:
            raise UnsupportedComponentError("model", "Unigram", "vocabulary too large")
        self.trie, trie_nodes = piece_trie(ids)
        self.trie_nodes = tf.constant(trie_nodes)

    def __call__(self, words: tf.RaggedTensor):
        """`pieces` with ids and scores: an unknown character is the unknown id, scored
        `unk_score`. Returns per piece (word, end, length, id, score)."""
        word, end, size, raw_id = self.pieces(words)
        unknown = raw_id < 0
        ids = tf.where(unknown, self.unk_id, raw_id)
        scores = tf.where(
            unknown, tf.constant(self.unk_score, tf.float64), tf.gather(self.scores, ids)
        )
        return word, end, size, ids, scores

    def pieces(self, words: tf.RaggedTensor):
        """Every vocabulary piece (and unknown single character) found in the words.

        Returns per piece: its word, end position in the word (1-based) and length, and its
        id (-1 for an unknown single character).

        Characters are laid out with a separator after each word, which no trie edge
        takes: a candidate reading it dies, so the loop needs no word ends. It pushes every
        candidate with its trie node's entry, unrolled two lengths at a time (its own ops
        are much of the cost); the pieces are picked out once after it.
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        char_word = row_ids(words)
        slot = tf.range(tf.size(char_word)) + char_word
        slots = tf.size(char_word) + tf.size(lengths)
        cps = tf.tensor_scatter_nd_update(
            tf.fill([slots], tf.constant(SEPARATOR, tf.int64)),
            slot[:, None],
            tf.cast(words.values, tf.int64),
        )

        def grow(size, live, node, out):
            edge = tf.bitwise.left_shift(node, CODE_POINT_BITS) | tf.gather(cps, live + size - 1)
            node = self.trie.lookup(edge)
            found = tf.gather(self.trie_nodes, node)
            out = push(out, tf.stack([live, tf.fill(tf.shape(live), size), found], axis=1))
            extends = tf.reshape(tf.where(tf.equal(tf.bitwise.bitwise_and(found, 1), 1)), [-1])
            return size + 1, tf.gather(live, extends), tf.gather(node, extends), out

        def grow_twice(*state):
            return grow(*grow(*state))

        _, _, _, out = tf.while_loop(
            lambda size, live, *_: tf.size(live) > 0,
            grow_twice,
            (
                tf.constant(1),
                slot,
                tf.fill(tf.shape(slot), tf.constant(TRIE_ROOT, tf.int64)),
                empty_list(tf.int32, [-1, 3]),
            ),
            shape_invariants=(
                tf.TensorShape([]),
                *[tf.TensorShape([None])] * 2,
                HANDLE_SHAPE,
            ),
        )
        starts, sizes, found = tf.unstack(concat(out, tf.int32, [-1, 3]), axis=1)
        piece = tf.bitwise.right_shift(found, 1) - 1
        # A single character that is no piece is the unknown candidate (id -1 here).
        keep = (piece >= 0) | tf.equal(sizes, 1)
        starts, sizes, piece = (select(t, keep) for t in (starts, sizes, piece))
        slot_word = tf.tensor_scatter_nd_update(
            tf.zeros([slots], tf.int32), slot[:, None], char_word
        )
        word = tf.gather(slot_word, starts)
        word_slot = tf.cast(words.row_starts(), tf.int32) + tf.range(tf.size(lengths))
        return word, starts + sizes - tf.gather(word_slot, word), sizes, piece


def piece_trie(ids: dict[str, int]) -> tuple[tf.lookup.StaticHashTable, np.ndarray]:
    """The trie of the pieces, as (edges, nodes).

    `edges` maps (node << 21 | code point) to the child node (0, a dead end, when there is
    none); `nodes[node]` is (piece id + 1) * 2 + (1 if a longer piece goes on from it), so
    0 for a node that is no piece and ends every piece through it.
    """
    index = {"": TRIE_ROOT}
    edges = {}
    for token in ids:
        for end in range(1, len(token) + 1):
            prefix = token[:end]
            if prefix not in index:
                index[prefix] = len(index) + 1
                edges[index[token[: end - 1]] << CODE_POINT_BITS | ord(prefix[-1])] = index[prefix]
    nodes = np.zeros(len(index) + 1, np.int32)
    for prefix, node in index.items():
        if prefix in ids:
            nodes[node] |= (ids[prefix] + 1) * 2
        if prefix:
            nodes[index[prefix[:-1]]] |= 1
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(edges), tf.int64), tf.constant(list(edges.values()), tf.int64)
        ),
        default_value=0,
    )
    return table, nodes
