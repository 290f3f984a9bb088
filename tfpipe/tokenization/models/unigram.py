"""The Unigram model: the best-scoring segmentation, exactly as `tokenizers` finds it.

`tokenizers` (Unigram::encode_optimized) runs a Viterbi pass over the word's characters: the
best path ending at each position is the best over every vocabulary piece ending there of
(best path at the piece's start + piece score), in f64, a candidate replacing the current
best only when strictly greater — so on ties the piece starting earliest (the longest) wins.
A character starting no single-character piece also gets an unknown candidate of score
`min_score - 10` (kUnkPenalty). Backtracking then fuses consecutive unknown-id nodes into
one piece (Unigram always fuses unknowns); a fused piece that is not a vocabulary entry is the
unknown id, or its UTF-8 bytes' `<0xXX>` tokens with `byte_fallback`.

In the graph each distinct word is segmented once. All pieces found in the words (the lattice)
are listed first, walking a trie of the pieces with one vectorised lookup per piece length.
Words are sorted longest first so that the words still running at position e are a prefix of
that order; the loop over end positions then only does arithmetic: it keeps the best scores of
the last `longest piece` positions as a [window, words] matrix and records each position's
best score. Each position's chosen piece is then found for all positions at once, and pointer
doubling marks the best paths.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import (
    INT32_MAX,
    bincount,
    mask_values,
    positions_in_rows,
    previous,
    repeat_range,
    replace_rows,
    row_ids,
    rows_from_ids,
    select,
)
from tfpipe.tokenization.tensor_lists import (
    HANDLE_SHAPE,
    concat,
    empty_list,
    item,
    push,
    split,
)
from tfpipe.tokenization.utf8 import utf8_byte, utf8_lengths
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"
UNK_PENALTY = 10.0
CODE_POINT_BITS = 21
# Trie node 0 is the dead end every missing edge leads to; 1 is the empty prefix.
TRIE_ROOT = 1
VITERBI_UNROLL = 4
# Words longer than this are segmented apart, from checked block passes
# (`_segment_long_words`); blocks hold this many positions each.
LONG_WORD_CHARS = 2048
BLOCK_CHARS = 512
LONG_WORD_REPAIRS = 4


class Unigram(tf.Module):
    """The compiled `model` section of type Unigram."""

    def __init__(self, component: dict) -> None:
        super().__init__(name="unigram")
        pieces = [(token, float(score)) for token, score in component["vocab"]]
        if not pieces:
            raise UnsupportedComponentError(SECTION, "Unigram", "empty vocabulary")
        if any(not token for token, _ in pieces):
            raise UnsupportedComponentError(SECTION, "Unigram", "empty vocabulary piece")
        unk_id = component.get("unk_id")
        if unk_id is None:
            raise UnsupportedComponentError(SECTION, "Unigram", "no unk_id")
        self.unk_id = int(unk_id)
        if not 0 <= self.unk_id < len(pieces):
            raise UnsupportedComponentError(SECTION, "Unigram", f"unk_id {unk_id} out of range")
        # Later duplicates win, as in the reference's token → id map.
        ids = {token: index for index, (token, _) in enumerate(pieces)}
        self.vocab = string_table(ids)
        scores = np.array([score for _, score in pieces], np.float64)
        self.scores = tf.constant(scores, tf.float64)
        self.unk_score = float(scores.min()) - UNK_PENALTY
        self.longest_piece = max(len(token) for token, _ in pieces)
        self.id_span = len(pieces)
        if (self.longest_piece + 1) * self.id_span >= 2**31:
            raise UnsupportedComponentError(SECTION, "Unigram", "vocabulary too large")
        self.trie, trie_nodes = _piece_trie(ids)
        self.trie_nodes = tf.constant(trie_nodes)
        # How far before a cut a long word's pieces may settle (see _tokenize_within).
        self.settle_chars = 4 * self.longest_piece
        self.byte_fallback = bool(component.get("byte_fallback", False))
        self.byte_ids = np.array([ids.get(f"<0x{b:02X}>", -1) for b in range(256)], np.int32)
        if self.byte_fallback and (self.byte_ids < 0).any():
            raise UnsupportedComponentError(
                SECTION, "Unigram", "byte_fallback needs all 256 <0xXX> tokens"
            )

    def __call__(self, words: tf.RaggedTensor, token_limit: int | None = None) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)].

        With `token_limit`, a word may come back cut: as the exact first tokens of its
        segmentation, at least `token_limit` of them (for right truncation, which keeps no
        more). That bounds the cost of one huge word without whitespace (see
        `_tokenize_within`).
        """
        strings = tf.strings.unicode_encode(words, "UTF-8")
        unique, inverse = tf.unique(strings, out_idx=tf.int32)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(strings)), inverse, tf.size(unique))
        unique_words = tf.gather(words, first)
        if token_limit is None:
            ids = self._tokenize(unique, unique_words)
        else:
            ids = self._tokenize_within(unique, unique_words, token_limit)
        return tf.gather(ids, inverse)

    def _tokenize_within(
        self, strings: tf.Tensor, words: tf.RaggedTensor, token_limit: int
    ) -> tf.RaggedTensor:
        """Segment words, the long ones from their first `kept` characters only.

        The Viterbi pass is causal: on a word's first `kept` characters it chooses exactly
        what it chooses there on the whole word. Where the best paths to the last
        `longest piece` positions all pass through one position, the whole word's path does
        too, so the pieces before it are settled. A long word whose settled pieces reach
        `token_limit` tokens keeps them; any other is segmented whole.
        """
        kept = token_limit * self.longest_piece + self.settle_chars
        if kept > INT32_MAX:
            # No word is that long.
            return self._tokenize(strings, words)
        lengths = tf.cast(words.row_lengths(), tf.int32)
        return tf.cond(
            tf.reduce_any(lengths > kept),
            lambda: self._tokenize_cut(strings, words, kept, token_limit),
            lambda: self._tokenize(strings, words),
        )

    def _tokenize_cut(
        self, strings: tf.Tensor, words: tf.RaggedTensor, kept: int, token_limit: int
    ) -> tf.RaggedTensor:
        cut_words = mask_values(words, positions_in_rows(words) < kept)
        cut_strings = tf.strings.unicode_encode(cut_words, "UTF-8")
        ids, settled = self._segment(cut_strings, cut_words, settle=(kept, token_limit))
        unsettled = ~settled

        def tokenize_unsettled_whole() -> tf.RaggedTensor:
            whole = self._tokenize(select(strings, unsettled), select(words, unsettled))
            return replace_rows(ids, unsettled, whole)

        return tf.cond(tf.reduce_any(unsettled), tokenize_unsettled_whole, lambda: ids)

    def _tokenize(self, strings: tf.Tensor, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """Segment every word, the ones longer than `LONG_WORD_CHARS` apart."""
        lengths = tf.cast(words.row_lengths(), tf.int32)
        return tf.cond(
            tf.reduce_any(lengths > LONG_WORD_CHARS),
            lambda: self._tokenize_long_apart(strings, words),
            lambda: self._segment(strings, words),
        )

    def _tokenize_long_apart(self, strings: tf.Tensor, words: tf.RaggedTensor):
        """Short words in one Viterbi pass (its loop runs as long as the longest word),
        long ones from checked block passes (`_segment_long_words`)."""
        long = tf.cast(words.row_lengths(), tf.int32) > LONG_WORD_CHARS
        short_rows = self._segment(select(strings, ~long), select(words, ~long))
        long_rows = self._segment_long_words(select(strings, long), select(words, long))
        short_rank = tf.cumsum(tf.cast(~long, tf.int32)) - 1
        long_rank = tf.cumsum(tf.cast(long, tf.int32)) - 1 + tf.cast(short_rows.nrows(), tf.int32)
        return tf.gather(
            tf.concat([short_rows, long_rows], axis=0), tf.where(long, long_rank, short_rank)
        )

    def _segment(
        self,
        strings: tf.Tensor,
        words: tf.RaggedTensor,
        settle: tuple[int, int] | None = None,
    ):
        """Segment every word in one Viterbi pass; with `settle` = (kept, token_limit),
        words of `kept` characters or more keep their settled pieces only, and whether
        those reach the limit is returned too."""
        lengths = tf.cast(words.row_lengths(), tf.int32)
        order = tf.argsort(lengths, direction="DESCENDING", stable=True)
        sorted_words = tf.gather(words, order)
        sorted_lengths = tf.gather(lengths, order)
        piece_length, piece_id, step_offsets = self._viterbi(sorted_words)
        word, start, stop, ids = self._backtrack(
            sorted_lengths, piece_length, piece_id, step_offsets
        )
        if settle is not None:
            settled, keep = self._settled_pieces(
                sorted_lengths, piece_length, step_offsets, word, stop, ids, *settle
            )
            word, start, stop, ids = (select(t, keep) for t in (word, start, stop, ids))
        rows = self._rows((word, start, stop, ids), sorted_words, tf.gather(strings, order), order)
        if settle is None:
            return rows
        return rows, tf.gather(settled, tf.math.invert_permutation(order))

    def _rows(self, pieces: tuple, words: tf.RaggedTensor, strings: tf.Tensor, owners):
        """Pieces (word, start, stop, id) of `words` → [words, (token ids)], word i's ids in
        row `owners[i]`: unknown runs fused (and turned into bytes with byte_fallback)."""
        word, start, stop, ids = self._fuse_unknown(*pieces)
        ids_word = tf.gather(owners, word)
        if self.byte_fallback:
            ids, ids_word = self._bytes_for_unknown(
                words, strings, word, start, stop, ids, ids_word
            )
        by_word = tf.argsort(ids_word, stable=True)
        return rows_from_ids(tf.gather(ids, by_word), tf.gather(ids_word, by_word), tf.size(owners))

    def _segment_long_words(self, strings: tf.Tensor, words: tf.RaggedTensor):
        """Segment long words exactly as the reference, from a checked guess.

        The reference's Viterbi pass adds scores up in f64 along each best path from the
        word's start, and since sums round, a choice between near-equal paths depends on
        everything before it: no part of a word can be skipped, and a pass over it steps
        through every position. Instead, a guess (`_block_guess`) is checked: its paths'
        sums are added up in path order (`_path_sums`), and every position must choose,
        from those sums, the very piece guessed (the best candidate, ties to the earliest
        start). Checked, the sums and choices are the reference's, by induction over the
        positions. A guess off somewhere is replaced by what the sums choose,
        `LONG_WORD_REPAIRS` times; a word still failing gets the stepwise pass.
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        count = tf.size(lengths)
        positions = tf.reduce_sum(lengths)
        word, end, size, ids, scores = self._scored_lattice(words)
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
            gain = tf.math.unsorted_segment_max(
                tf.where(guessed, scores, -np.inf), at, positions
            )
            gain = tf.scatter_nd(position_node[:, None], gain, [positions + count])
            sums = self._path_sums(*self._piece_tree(lengths, sizes), gain)
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
                self._block_guess(lengths, position_word, position, word, end, size, ids, scores),
                tf.zeros([count], tf.bool),
            ),
        )
        piece_id = tf.math.unsorted_segment_max(
            tf.where(tf.equal(tf.gather(sizes, at), size), ids, -1), at, positions
        )
        _, on_path = self._piece_tree(lengths, sizes)
        kept = tf.gather(on_path, position_node) & tf.gather(checked, position_word)
        stop = select(position, kept)
        pieces = (
            select(position_word, kept),
            stop - select(sizes, kept),
            stop,
            select(piece_id, kept),
        )
        rows = self._rows(pieces, words, strings, tf.range(count))

        def segment_unchecked_stepwise() -> tf.RaggedTensor:
            unchecked = self._segment(select(strings, ~checked), select(words, ~checked))
            return replace_rows(rows, ~checked, unchecked)

        return tf.cond(tf.reduce_all(checked), lambda: rows, segment_unchecked_stepwise)

    def _block_guess(
        self, lengths, position_word, position, word, end, size, ids, scores
    ) -> tf.Tensor:
        """Per position of long words (flat: `position` 1 … length of word `position_word`),
        the length of the piece a pass over its block chooses to end there. Blocks of
        `BLOCK_CHARS` start `4 × longest piece` characters early: paths from any start
        mostly meet by then, so the choices are mostly the whole word's (and are checked)."""
        overlap = 4 * self.longest_piece
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
        longest, running, step_offsets = _pass_layout(block_length)
        block = tf.gather(rank, block)
        best = self._best_scores(longest, running, block, end, size, scores)
        chosen, _ = self._choose(
            best, step_offsets, block, end, size, ids, scores, tf.reduce_sum(running[1:])
        )
        home = tf.gather(block_base, position_word) + (position - 1) // BLOCK_CHARS
        local = position - tf.gather(block_start, home)
        return tf.gather(chosen, tf.gather(step_offsets, local - 1) + tf.gather(rank, home))

    @staticmethod
    def _piece_tree(lengths, sizes) -> tuple[tf.Tensor, tf.Tensor]:
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
        return parent, _reached(ends, parent)

    @staticmethod
    def _path_sums(parent, on_path, gain) -> tf.Tensor:
        """Per node of a piece tree (`_piece_tree`), its path's score added up as the
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
        chain, rank = _climb(tf.where(head, node, parent), tf.cast(~head, tf.int32))
        chain_length = bincount(chain, nodes)
        above = head & inner
        _, level = _climb(
            tf.where(above, tf.gather(chain, parent), node), tf.cast(above, tf.int32)
        )
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

    def _settled_pieces(
        self, lengths, piece_length, step_offsets, word, stop, ids, kept: int, token_limit: int
    ):
        """(settled, keep): per word whether its pieces are exact and enough; per piece
        whether it stays. Words shorter than `kept` were not cut: all theirs stay.

        A cut word settles at its last piece boundary at least `settle_chars` before the cut,
        if the best paths to the cut's last `longest piece` positions all pass through it.
        Trailing unknown pieces are dropped: they might fuse with what the cut removed.
        """
        count = tf.size(lengths)
        cut = lengths >= kept
        piece_cut = tf.gather(cut, word)
        candidate = piece_cut & (stop <= kept - self.settle_chars)
        settle_at = tf.math.unsorted_segment_max(tf.where(candidate, stop, 0), word, count)
        meet = self._paths_meet(piece_length, step_offsets, tf.where(cut)[:, 0], settle_at, kept)
        known = piece_cut & (stop <= tf.gather(settle_at, word)) & (ids != self.unk_id)
        known_stop = tf.math.unsorted_segment_max(tf.where(known, stop, 0), word, count)
        tokens = tf.math.unsorted_segment_sum(tf.cast(known, tf.int32), word, count)
        settled = ~cut | (meet & (tokens >= token_limit))
        keep = ~piece_cut | (stop <= tf.gather(known_stop, word))
        return settled, keep

    def _paths_meet(self, piece_length, step_offsets, cut_words, settle_at, kept: int):
        """Per word: whether the best paths to its last `longest piece` positions (of
        `kept`) all pass through `settle_at` (always true for words not cut).

        Pointer doubling over each cut word's positions after `settle_at`: a position's
        ancestor jumps to its ancestor's ancestor until it is at or before `settle_at`.
        """
        cut_words = tf.cast(cut_words, tf.int32)
        at = tf.gather(settle_at, cut_words)
        span = kept - at
        owner, within = _expand(span)
        word = tf.gather(cut_words, owner)
        settle = tf.gather(at, owner)
        position = settle + 1 + within
        base = tf.gather(tf.cumsum(span, exclusive=True), owner)
        size = tf.gather(piece_length, tf.gather(step_offsets, position - 1) + word)
        ancestor = position - size
        for _ in range((self.settle_chars + self.longest_piece).bit_length()):
            above = ancestor > settle
            jump = tf.gather(ancestor, base + tf.maximum(ancestor - settle - 1, 0))
            ancestor = tf.where(above, jump, ancestor)
        misses = (position > kept - self.longest_piece) & (ancestor != settle)
        missed = tf.math.unsorted_segment_max(
            tf.cast(misses, tf.int32), word, tf.size(settle_at)
        )
        return missed == 0

    def _lattice(self, words: tf.RaggedTensor):
        """Every vocabulary piece (and unknown single character) found in the words.

        From every start, candidates grow one character at a time down the trie of pieces
        (the reference's trie prefix search), one vectorised integer lookup per length, while
        some piece is still that long. Returns per piece: its word, end position in the word
        (1-based) and length, and its id (-1 for an unknown single character).
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        char_starts = tf.cast(words.row_starts(), tf.int32)
        char_word = row_ids(words)
        cps = tf.cast(words.values, tf.int64)

        def grow(size, live, stop, node, starts_out, sizes_out, ids_out):
            edge = tf.bitwise.left_shift(node, CODE_POINT_BITS) | tf.gather(cps, live + size - 1)
            node = self.trie.lookup(edge)
            found = tf.gather(self.trie_nodes, node)
            piece = found // 2 - 1
            # A single character that is no piece is the unknown candidate (id -1 here).
            keep = (piece >= 0) | tf.equal(size, 1)
            pieces = select(live, keep)
            extends = tf.equal(found % 2, 1) & (live + size < stop)
            return (
                size + 1,
                select(live, extends),
                select(stop, extends),
                select(node, extends),
                push(starts_out, pieces),
                push(sizes_out, tf.fill(tf.shape(pieces), size)),
                push(ids_out, select(piece, keep)),
            )

        live = tf.range(tf.size(char_word))
        _, _, _, _, starts, sizes, ids = tf.while_loop(
            lambda size, live, *_: tf.size(live) > 0,
            grow,
            (
                tf.constant(1),
                live,
                tf.gather(char_starts + lengths, char_word),
                tf.fill(tf.shape(live), tf.constant(TRIE_ROOT, tf.int64)),
                *(empty_list(tf.int32),) * 3,
            ),
            shape_invariants=(
                tf.TensorShape([]),
                *[tf.TensorShape([None])] * 3,
                *[HANDLE_SHAPE] * 3,
            ),
        )
        starts, sizes, ids = (concat(handle, tf.int32) for handle in (starts, sizes, ids))
        word = tf.gather(char_word, starts)
        end = starts + sizes - tf.gather(char_starts, word)
        return word, end, sizes, ids

    def _scored_lattice(self, words: tf.RaggedTensor):
        """`_lattice` with ids and scores: an unknown character is the unknown id, scored
        `unk_score`."""
        word, end, size, raw_id = self._lattice(words)
        unknown = raw_id < 0
        ids = tf.where(unknown, self.unk_id, raw_id)
        scores = tf.where(
            unknown, tf.constant(self.unk_score, tf.float64), tf.gather(self.scores, ids)
        )
        return word, end, size, ids, scores

    def _viterbi(self, words: tf.RaggedTensor):
        """Best piece ending at every position of every word (words sorted longest first).

        Returns the chosen piece length and id per (end position, word), flat in order of end
        position then word, and where each end position's entries start in that order.
        """
        longest, running, step_offsets = _pass_layout(tf.cast(words.row_lengths(), tf.int32))
        word, end, size, ids, scores = self._scored_lattice(words)
        best = self._best_scores(longest, running, word, end, size, scores)
        piece_length, piece_id = self._choose(
            best, step_offsets, word, end, size, ids, scores, tf.reduce_sum(running[1:])
        )
        return piece_length, piece_id, step_offsets

    def _choose(self, best, step_offsets, word, end, size, ids, scores, entries):
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
        keys = size * self.id_span + ids
        chosen = tf.math.unsorted_segment_max(tf.where(is_best, keys, -1), at, entries)
        return chosen // self.id_span, chosen % self.id_span

    def _best_scores(self, longest, running, word, end, size, scores) -> tf.Tensor:
        """The best path score to every (end position, word), flat in that order.

        The loop over end positions keeps the best scores of the last `longest piece`
        positions as a [window, words] matrix; each step takes its pieces from lists split
        beforehand and does arithmetic only. Steps are unrolled `VITERBI_UNROLL` at a time:
        a long word makes many steps over few words, where the loop's own ops are the cost.
        """
        window = self.longest_piece
        by_end = tf.argsort(end, stable=True)
        word, size, scores = (tf.gather(t, by_end) for t in (word, size, scores))
        per_end = bincount(end - 1, longest + VITERBI_UNROLL)
        sources = split(tf.stack([size - 1, word], axis=1), per_end, [-1, 2])
        piece_scores = split(scores, per_end)
        counts = tf.concat([running[1:], tf.zeros([VITERBI_UNROLL], tf.int32)], 0)

        def step(index, best, best_out):
            # best[j, w]: best score of word w's first (index - j) characters.
            source = item(sources, index, tf.int32, [-1, 2])
            candidate = tf.gather_nd(best, source) + item(piece_scores, index, tf.float64)
            count = counts[index]
            top = tf.math.unsorted_segment_max(candidate, source[:, 1], count)
            older = tf.slice(best, [0, 0], [window - 1, count])
            return tf.concat([tf.reshape(top, [1, -1]), older], 0), push(best_out, top)

        def steps(index, best, best_out):
            for offset in range(VITERBI_UNROLL):
                best, best_out = step(index + offset, best, best_out)
            return index + VITERBI_UNROLL, best, best_out

        _, _, best_out = tf.while_loop(
            lambda index, *_: index < longest,
            steps,
            (tf.constant(0), tf.zeros([window, running[0]], tf.float64), empty_list(tf.float64)),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([window, None]), HANDLE_SHAPE),
        )
        return concat(best_out, tf.float64)

    @staticmethod
    def _backtrack(lengths, piece_length, piece_id, step_offsets):
        """The chosen pieces of every word: the positions its best path goes through.

        Every position of a word (0 … length) is a node pointing to where the piece chosen
        to end there starts; the path is what the word's end reaches along these pointers
        (`_reached`: no loop runs once per piece). Returns (word, start, stop, id) per
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
        on_path = _reached(at_end, tf.range(node_count) - size) & inner
        stop = select(position, on_path)
        return (
            select(node_word, on_path),
            stop - select(size, on_path),
            stop,
            select(ids, on_path),
        )

    def _fuse_unknown(self, word, start, stop, ids):
        """Merge runs of unknown-id pieces of a word into one piece (the reference's fuse_unk)."""
        unknown = ids == self.unk_id
        continues = unknown & previous(unknown, False) & (previous(word, -1) == word)
        keep = ~continues
        run = tf.cumsum(tf.cast(keep, tf.int32)) - 1
        run_stop = tf.math.unsorted_segment_max(stop, run, tf.reduce_sum(tf.cast(keep, tf.int32)))
        return (
            select(word, keep),
            select(start, keep),
            run_stop,
            select(ids, keep),
        )

    def _bytes_for_unknown(self, words, strings, word, start, stop, ids, ids_word):
        """Unknown pieces that are not vocabulary entries → the tokens of their UTF-8 bytes."""
        char_starts = tf.cast(tf.gather(words.row_starts(), word), tf.int32)
        byte_offsets = tf.concat([[0], tf.cumsum(utf8_lengths(words.values))], axis=0)
        base = tf.gather(byte_offsets, char_starts)
        begin = tf.gather(byte_offsets, char_starts + start) - base
        finish = tf.gather(byte_offsets, char_starts + stop) - base
        text = tf.strings.substr(tf.gather(strings, word), begin, finish - begin)
        expand = (ids == self.unk_id) & (self.vocab.lookup(text) < 0)
        piece, within = _expand(tf.where(expand, stop - start, 1))
        cps = tf.gather(words.values, tf.gather(char_starts + start, piece) + within)
        expand_char = tf.gather(expand, piece)
        length = tf.where(expand_char, utf8_lengths(cps), 1)
        char, byte_index = _expand(length)
        byte = utf8_byte(tf.gather(cps, char), tf.gather(length, char), byte_index)
        owner = tf.gather(piece, char)
        out = tf.where(
            tf.gather(expand_char, char),
            tf.gather(self.byte_ids, tf.clip_by_value(byte, 0, 255)),
            tf.gather(ids, owner),
        )
        return out, tf.gather(ids_word, owner)


def _piece_trie(ids: dict[str, int]) -> tuple[tf.lookup.StaticHashTable, np.ndarray]:
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


def _pass_layout(lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(longest, running, step_offsets) of words sorted longest first: `running[e]` words
    are at least e characters long (e = 0 … longest), and the entries of end position e + 1
    start at `step_offsets[e]` in the flat (end position, word) order of the Viterbi pass."""
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    running = tf.cumsum(bincount(lengths, longest + 1), reverse=True)
    return longest, running, tf.cumsum(running[1:], exclusive=True)


def _reached(start: tf.Tensor, jump: tf.Tensor) -> tf.Tensor:
    """Whether each node is reached from a node where `start` is 1 (int32) following
    `jump` (a node pointing to itself ends a path). Pointer doubling marks the paths in
    log2(length) rounds: after the round with jumps of 2^k steps, the marks reach
    2^(k+1) - 1 steps on."""
    count = tf.size(jump)

    def marked_further(marked, jump):
        reached = tf.math.unsorted_segment_max(marked, jump, count)
        return tf.maximum(marked, reached), jump, tf.gather(jump, jump)

    marked, _, _ = tf.while_loop(
        lambda _, jump, further: tf.reduce_any(tf.not_equal(jump, further)),
        lambda marked, _, jump: marked_further(marked, jump),
        marked_further(start, jump),
    )
    return tf.equal(marked, 1)


def _climb(up: tf.Tensor, steps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Pointer doubling: (top, distance) for each node following `up` (a node is its own
    top when `up` points to itself) and adding up `steps`, in log2(depth) rounds."""

    def double(up, steps):
        return tf.gather(up, up), steps + tf.gather(steps, up)

    return tf.while_loop(
        lambda up, _: tf.reduce_any(tf.not_equal(tf.gather(up, up), up)), double, (up, steps)
    )


def _bit_length(values: tf.Tensor) -> tf.Tensor:
    """Bits of each positive int32 (a log2 bucket)."""
    bits = tf.zeros_like(values)
    for shift in (16, 8, 4, 2, 1):
        wide = tf.bitwise.right_shift(values, bits + shift) > 0
        bits = tf.where(wide, bits + shift, bits)
    return bits + 1


def _expand(counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(source, index within source) for each item expanded `counts` times."""
    source = repeat_range(counts)
    within = tf.range(tf.size(source)) - tf.gather(tf.cumsum(counts, exclusive=True), source)
    return source, within

