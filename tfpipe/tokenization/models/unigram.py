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
from tfpipe.tokenization.models.bpe import utf8_byte
from tfpipe.tokenization.models.wordpiece import utf8_lengths
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
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"
UNK_PENALTY = 10.0
CODE_POINT_BITS = 21
# Trie node 0 is the dead end every missing edge leads to; 1 is the empty prefix.
TRIE_ROOT = 1
VITERBI_UNROLL = 4


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
        ids, settled = self._tokenize(cut_strings, cut_words, settle=(kept, token_limit))
        unsettled = ~settled

        def tokenize_unsettled_whole() -> tf.RaggedTensor:
            whole = self._tokenize(select(strings, unsettled), select(words, unsettled))
            return replace_rows(ids, unsettled, whole)

        return tf.cond(tf.reduce_any(unsettled), tokenize_unsettled_whole, lambda: ids)

    def _tokenize(
        self,
        strings: tf.Tensor,
        words: tf.RaggedTensor,
        settle: tuple[int, int] | None = None,
    ):
        """Segment every word; with `settle` = (kept, token_limit), words of `kept`
        characters or more keep their settled pieces only, and whether those reach the
        limit is returned too."""
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
        word, start, stop, ids = self._fuse_unknown(word, start, stop, ids)
        ids_word = tf.gather(order, word)
        if self.byte_fallback:
            ids, ids_word = self._bytes_for_unknown(
                sorted_words, tf.gather(strings, order), word, start, stop, ids, ids_word
            )
        by_word = tf.argsort(ids_word, stable=True)
        rows = rows_from_ids(
            tf.gather(ids, by_word), tf.gather(ids_word, by_word), tf.size(strings)
        )
        if settle is None:
            return rows
        return rows, tf.gather(settled, tf.math.invert_permutation(order))

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

    def _viterbi(self, words: tf.RaggedTensor):
        """Best piece ending at every position of every word (words sorted longest first).

        Returns the chosen piece length and id per (end position, word), flat in order of end
        position then word, and where each end position's entries start in that order.
        """
        lengths = tf.cast(words.row_lengths(), tf.int32)
        longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
        # Number of words at least e characters long, for e = 0 … longest.
        running = tf.cumsum(bincount(lengths, longest + 1), reverse=True)
        step_offsets = tf.cumsum(running[1:], exclusive=True)

        word, end, size, raw_id = self._lattice(words)
        unknown = raw_id < 0
        ids = tf.where(unknown, self.unk_id, raw_id)
        scores = tf.where(
            unknown, tf.constant(self.unk_score, tf.float64), tf.gather(self.scores, ids)
        )
        best = self._best_scores(longest, running, word, end, size, scores)
        # The chosen piece of a position is the longest among those reaching its best score
        # (ties go to the earliest start, first seen by the reference). Sums are recomputed
        # exactly as the loop made them, so equality is exact.
        start = end - size
        before = tf.where(
            start > 0,
            tf.gather(best, tf.gather(step_offsets, tf.maximum(start - 1, 0)) + word),
            tf.constant(0.0, tf.float64),
        )
        at = tf.gather(step_offsets, end - 1) + word
        is_best = tf.equal(before + scores, tf.gather(best, at))
        keys = size * self.id_span + ids
        chosen = tf.math.unsorted_segment_max(
            tf.where(is_best, keys, -1), at, tf.reduce_sum(running[1:])
        )
        return chosen // self.id_span, chosen % self.id_span, step_offsets

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
        to end there starts; the path is what the word's end reaches along these pointers.
        Pointer doubling marks it in log2(pieces) rounds, no loop runs once per piece:
        after the round with jumps of 2^k steps, the marks reach 2^(k+1) - 1 steps back.
        Returns (word, start, stop, id) per piece, in text order.
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

        def marked_further(marked, jump):
            reached = tf.math.unsorted_segment_max(marked, jump, node_count)
            return tf.maximum(marked, reached), jump, tf.gather(jump, jump)

        at_end = tf.cast(tf.equal(position, tf.gather(lengths, node_word)), tf.int32)
        jump = tf.range(node_count) - size
        marked, _, _ = tf.while_loop(
            lambda _, jump, further: tf.reduce_any(tf.not_equal(jump, further)),
            lambda marked, _, jump: marked_further(marked, jump),
            marked_further(at_end, jump),
        )
        on_path = tf.equal(marked, 1) & inner
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


def _expand(counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(source, index within source) for each item expanded `counts` times."""
    source = repeat_range(counts)
    within = tf.range(tf.size(source)) - tf.gather(tf.cumsum(counts, exclusive=True), source)
    return source, within

