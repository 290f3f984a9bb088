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
# Piece lengths per turn of the walk (even: a step reads two characters): each turn adds the
# loop's own ops, and lengths after the last candidate dies run on nothing.
LENGTHS_PER_TURN = 4


class PieceLattice(tf.Module):
    """The vocabulary's pieces (a trie) and scores: finds and scores the pieces of words."""

    def __init__(self, ids: dict[str, int], scores: np.ndarray, unk_id: int) -> None:
        super().__init__(name="piece_lattice")
        self.scores = tf.constant(scores, tf.float64)
        self.unk_id = unk_id
        self.unk_score = float(scores.min()) - UNK_PENALTY
        self.longest_piece = max(len(token) for token in ids)
        # The Viterbi pass packs a piece's length and id into one int32, length << id_bits | id
        # (shifts: integer division costs several times more per value), and the trie a
        # node's depth and id + 1, depth << piece_bits | id + 1: one check covers both, as
        # piece_bits >= id_bits.
        self.id_bits = max(1, (len(scores) - 1).bit_length())
        self.piece_bits = len(scores).bit_length()
        if (self.longest_piece + 1) << self.piece_bits >= 2**31:
            raise UnsupportedComponentError("model", "Unigram", "vocabulary too large")
        self.trie, trie_nodes = piece_trie(ids, self.piece_bits)
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
        takes: a candidate reading it dies, so the loop needs no word ends. Each step grows
        the candidates by two characters (`LENGTHS_PER_TURN` a turn) and pushes the first
        one's slot and the entries of the two nodes reached; a candidate's length is its
        node's depth, and the pieces are picked out once after the loop.
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        char_word = row_ids(words)
        slot = tf.range(tf.size(char_word)) + char_word
        slots = tf.size(char_word) + tf.size(lengths)
        # Segment sums lay characters out (scatters cost several times more on CPU): a
        # separator slot holds no character, so it sums to 0, shifted to SEPARATOR. One
        # more separator ends the layout: a step reads a candidate's next two characters.
        cps = SEPARATOR + tf.math.unsorted_segment_sum(
            tf.cast(words.values, tf.int64) - SEPARATOR, slot, slots + 1
        )

        def child(node, at):
            edge = tf.bitwise.left_shift(node, CODE_POINT_BITS) | tf.gather(cps, at)
            node = self.trie.lookup(edge)
            return node, tf.gather(self.trie_nodes, node)

        def grow_two(last, node, out):
            # A candidate dead after one character goes on from node 0, which has no edge.
            node, entry = child(node, last)
            node, next_entry = child(node, last + 1)
            extends = tf.where(next_entry >= 0)
            out = push(out, tf.stack([last, entry, next_entry], axis=1))
            return tf.gather_nd(last, extends) + 2, tf.gather_nd(node, extends), out

        def grow_turn(*state):
            for _ in range(LENGTHS_PER_TURN // 2):
                state = grow_two(*state)
            return state

        _, _, out = tf.while_loop(
            lambda last, *_: tf.size(last) > 0,
            grow_turn,
            (
                slot,
                tf.fill(tf.shape(slot), tf.constant(TRIE_ROOT, tf.int64)),
                empty_list(tf.int32, [-1, 3]),
            ),
            shape_invariants=(*[tf.TensorShape([None])] * 2, HANDLE_SHAPE),
        )
        last, entry, next_entry = tf.unstack(concat(out, tf.int32, [-1, 3]), axis=1)
        last = tf.concat([last, last + 1], 0)
        entry = tf.concat([entry, next_entry], 0)
        # The entry's bits, flipped where the node extends no further (see piece_trie).
        entry = tf.bitwise.bitwise_xor(entry, tf.bitwise.right_shift(entry, 31))
        piece = tf.bitwise.bitwise_and(entry, (1 << self.piece_bits) - 1) - 1
        # The first push is every character's first candidate: one that is no piece is the
        # unknown candidate (id -1 here; its dead node has depth 0).
        first = tf.range(tf.size(entry)) < tf.size(slot)
        keep = (piece >= 0) | first
        sizes = tf.maximum(tf.bitwise.right_shift(entry, self.piece_bits), 1)
        last, sizes, piece = (select(t, keep) for t in (last, sizes, piece))
        slot_word = tf.math.unsorted_segment_sum(char_word, slot, slots)
        word = tf.gather(slot_word, last)
        word_slot = tf.cast(words.row_starts(), tf.int32) + tf.range(tf.size(lengths))
        return word, last + 1 - tf.gather(word_slot, word), sizes, piece


def piece_trie(
    ids: dict[str, int], piece_bits: int
) -> tuple[tf.lookup.StaticHashTable, np.ndarray]:
    """The trie of the pieces, as (edges, entries).

    `edges` maps (node << 21 | code point) to the child node (0, a dead end, when there is
    none). `entries[node]` is the node's depth (its prefix's length) << piece bits | piece
    id + 1 (0 for a node that is no piece), its bits flipped (negative) when no longer
    piece goes on from the node: one comparison tells the walk whether to go on, and a
    candidate's length is its node's depth.
    """
    index = {"": TRIE_ROOT}
    edges = {}
    for token in ids:
        for end in range(1, len(token) + 1):
            prefix = token[:end]
            if prefix not in index:
                index[prefix] = len(index) + 1
                edges[index[token[: end - 1]] << CODE_POINT_BITS | ord(prefix[-1])] = index[prefix]
    entries = np.zeros(len(index) + 1, np.int32)
    extends = np.zeros(len(index) + 1, bool)
    for prefix, node in index.items():
        entries[node] = len(prefix) << piece_bits | (ids[prefix] + 1 if prefix in ids else 0)
        if prefix:
            extends[index[prefix[:-1]]] = True
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(edges), tf.int64), tf.constant(list(edges.values()), tf.int64)
        ),
        default_value=0,
    )
    return table, np.where(extends, entries, ~entries)
