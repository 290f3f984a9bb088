"""The BPE model: merges applied by rank, exactly as `tokenizers` applies them.

Words are cut into chunks no merge can join, and each distinct chunk of the batch merges, at
every loop step, all occurrences of its lowest-ranked pair at once. Why that equals the
reference's priority queue: docs/how-it-works.md#bpe-modelsbpepy.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS, BlockTable
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.bpe_spans import BPESpans
from tfpipe.tokenization.ragged_ops import (
    bincount,
    expand,
    following,
    previous,
    row_ids,
    rows_from_starts,
    rows_starting_at,
    select,
)
from tfpipe.tokenization.reference import reference_tokenizer
from tfpipe.tokenization.tensor_lists import HANDLE_SHAPE, concat, empty_list, push
from tfpipe.tokenization.utf8 import utf8_byte, utf8_lengths
from tfpipe.tokenization.vocabulary import static_table, string_table

SECTION = "model"
# Merge table values are rank << 32 | GUARDED | merged id; a pair that does not merge looks up
# NO_MERGE, above every rank and not guarded.
GUARDED = np.int64(2**31)
MERGED_ID = GUARDED - 1
NO_MERGE = np.int64(2**63 - 1) ^ GUARDED
# The symbol after each chunk in the merge loop: in no merge, so no pair spans two chunks.
SEPARATOR = np.int64(2**31 - 1)
LOW = np.int64(2**32 - 1)
HIGH = ~LOW


def _merge_pairs(
    component: dict, vocab: dict[str, int], prefix: str
) -> dict[tuple[int, int], tuple[int, int]]:
    """(left id, right id) → (rank, merged id); a later duplicate overrides, as in the reference."""
    pairs: dict[tuple[int, int], tuple[int, int]] = {}
    for rank, merge in enumerate(component.get("merges") or []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        right_part = right[len(prefix) :] if prefix and right.startswith(prefix) else right
        try:
            ids = vocab[left], vocab[right], vocab[left + right_part]
        except KeyError as missing:
            raise UnsupportedComponentError(
                SECTION, "BPE", f"merge {left!r} {right!r} uses {missing} outside the vocabulary"
            ) from None
        pairs[ids[0], ids[1]] = (rank, ids[2])
    return pairs


def _merge_table(pairs: dict[tuple[int, int], tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Keys left << 32 | right and values rank << 32 | GUARDED | merged id of the merges.

    A merge is guarded when every merge taking its left symbol as a right one, or its right
    symbol as a left one, ranks after it: nothing can take its symbols first, so the loop
    merges it in any step it shows up in (see docs/how-it-works.md). That rests on every merge
    ranking after the merges creating its symbols, as the loop does; without it none is.
    """
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lefts, rights = (np.array(side, np.int64) for side in zip(*pairs, strict=True))
    ranks, news = (np.array(side, np.int64) for side in zip(*pairs.values(), strict=True))
    size = int(max(lefts.max(), rights.max(), news.max())) + 1
    as_right, as_left = np.full(size, 2**62), np.full(size, 2**62)
    np.minimum.at(as_right, rights, ranks)
    np.minimum.at(as_left, lefts, ranks)
    created = np.full(size, -1)
    np.maximum.at(created, news, ranks)
    ordered = (created < np.minimum(as_left, as_right)).all()
    guarded = ordered & (ranks < as_right[lefts]) & (ranks < as_left[rights])
    values = (ranks << 32) | np.where(guarded, GUARDED, 0) | news
    return (lefts << 32) | rights, values


def _joinable_pairs(vocab: dict[str, int]) -> np.ndarray:
    """Keys (first << 21 | second) of every pair of adjacent characters inside a token."""
    pairs = {
        (ord(a) << 21) | ord(b) for token in vocab for a, b in zip(token, token[1:], strict=False)
    }
    return np.array(sorted(pairs), np.int64)


def _character_ids(vocab: dict[str, int], prefix: str, suffix: str) -> list[np.ndarray]:
    """Per code point: the id of the character alone, with prefix, with suffix, with both."""
    columns = [np.full(NUM_CODEPOINTS, -1, np.int32) for _ in range(4)]
    for token, token_id in vocab.items():
        for column, (head, tail) in enumerate(
            [("", ""), (prefix, ""), ("", suffix), (prefix, suffix)]
        ):
            if column and not (head or tail):
                continue
            if token.startswith(head) and token.endswith(tail):
                core = token[len(head) : len(token) - len(tail)]
                if len(core) == 1:
                    columns[column][ord(core)] = token_id
    for column, (head, tail) in enumerate([("", ""), (prefix, ""), ("", suffix), (prefix, suffix)]):
        if not (head or tail):
            columns[column] = columns[0]
    return columns


class BPE(tf.Module, BPESpans):
    """The compiled `model` section of type BPE."""

    def __init__(self, component: dict) -> None:
        super().__init__(name="bpe")
        if component.get("dropout") not in (None, 0, 0.0):
            raise UnsupportedComponentError(SECTION, "BPE", "dropout is random, not reproducible")
        vocab: dict[str, int] = component["vocab"]
        prefix = component.get("continuing_subword_prefix") or ""
        suffix = component.get("end_of_word_suffix") or ""
        self.ignore_merges = bool(component.get("ignore_merges", False))
        self.fuse_unk = bool(component.get("fuse_unk", False))
        self.byte_fallback = bool(component.get("byte_fallback", False))
        unk_token = component.get("unk_token")
        if unk_token is not None and unk_token not in vocab:
            raise UnsupportedComponentError(SECTION, "BPE", f"unk_token {unk_token!r} not in vocab")
        self.unk_id = vocab[unk_token] if unk_token is not None else None
        self.byte_ids = np.array([vocab.get(f"<0x{b:02X}>", -1) for b in range(256)], np.int32)
        if self.byte_fallback and ((self.byte_ids < 0).any() or prefix or suffix):
            raise UnsupportedComponentError(
                SECTION, "BPE", "byte_fallback needs all 256 <0xXX> tokens and no prefix/suffix"
            )
        # Without prefix or suffix a character's id does not depend on its place: one column.
        columns = _character_ids(vocab, prefix, suffix)
        self.characters = BlockTable.from_dense(*(columns if prefix or suffix else columns[:1]))
        pairs = _merge_pairs(component, vocab, prefix)
        self._span_tables(vocab, prefix, suffix, {merged for _, merged in pairs.values()})
        keys, values = _merge_table(pairs)
        self.merges = static_table(
            keys.reshape(-1), values.reshape(-1), tf.int64, tf.int64, NO_MERGE
        )
        self.vocab = string_table(vocab) if self.ignore_merges else None
        # With a prefix or suffix a symbol's id depends on its place in the word: no chunks.
        self.joinable = self.rebuilt = None
        if not (prefix or suffix):
            self.rebuilt = string_table(_rebuilt_whole(component))
            keys = _joinable_pairs(vocab)
            self.joinable = static_table(keys, np.ones(len(keys), np.int32), tf.int64, tf.int32, 0)

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)]."""
        whole = None
        if self.ignore_merges:
            whole = self.vocab.lookup(tf.strings.unicode_encode(words, "UTF-8"))
        chunks, chunk_word = self._chunks(words, None if whole is None else whole >= 0)
        keys = tf.strings.unicode_encode(chunks, "UTF-8")
        chunk_whole = None
        if whole is not None:
            # A listed word is one chunk taken whole; its key must not meet an unlisted chunk.
            chunk_whole = tf.gather(whole, chunk_word)
            keys = tf.where(chunk_whole >= 0, tf.strings.join(["\xff", keys]), keys)
        unique, inverse = tf.unique(keys, out_idx=tf.int32)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(keys)), inverse, tf.size(unique))
        whole_of_unique = self._taken_whole(unique, first, chunk_whole)
        rows, row_of = self._tokenize(chunks, first, whole_of_unique)
        tokens = tf.gather(rows, tf.gather(row_of, inverse))
        counts = tf.math.unsorted_segment_sum(tokens.row_lengths(), chunk_word, words.nrows())
        return tf.RaggedTensor.from_row_lengths(tokens.values, counts, validate=False)

    def _taken_whole(
        self, unique: tf.Tensor, first: tf.Tensor, chunk_whole: tf.Tensor | None
    ) -> tf.Tensor | None:
        """Each distinct chunk's id when it is one token without merging (-1 otherwise): a
        word listed under ignore_merges, or a token the merges rebuild whole from its
        characters (most words), which then never enters the merge loop."""
        rebuilt = None if self.rebuilt is None else self.rebuilt.lookup(unique)
        if chunk_whole is None:
            return rebuilt
        listed = tf.gather(chunk_whole, first)
        return listed if rebuilt is None else tf.where(listed >= 0, listed, rebuilt)

    def _chunks(
        self, words: tf.RaggedTensor, listed: tf.Tensor | None
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Words cut where no merge can join the neighbours; (chunks, word of each chunk).

        Only between two vocabulary characters: unknown ones may be dropped, fused or
        byte-expanded, which changes what becomes adjacent.
        """
        cps = words.values
        words_starting = rows_starting_at(words)
        starts = words_starting > 0
        if self.joinable is not None:
            known = self.characters.lookup(cps)[0] >= 0
            pair_keys = tf.bitwise.left_shift(tf.cast(previous(cps, 0), tf.int64), 21) | tf.cast(
                cps, tf.int64
            )
            cut = (self.joinable.lookup(pair_keys) == 0) & known & previous(known, False)
            if listed is not None:
                cut &= ~tf.gather(listed, row_ids(words))
            starts |= cut
        # A chunk's word: the words started up to the chunk's start (a cumsum over chunks).
        return rows_from_starts(cps, starts), tf.cumsum(select(words_starting, starts)) - 1

    def _tokenize(
        self, chunks: tf.RaggedTensor, first: tf.Tensor, whole: tf.Tensor | None
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Distinct chunks (`first` of each in `chunks`) → rows of tokens and each distinct
        chunk's row; those with `whole` ≥ 0 are that one token."""
        if whole is None:
            return self._merged(tf.gather(chunks, first), empty_list(tf.int64))
        taken = whole >= 0
        # The merged chunks are numbered first, then the taken ones, which start finished.
        order = tf.concat([tf.where(~taken)[:, 0], tf.where(taken)[:, 0]], 0)
        words = tf.gather(chunks, select(first, ~taken))
        finished = _finished_whole(select(whole, taken), words.nrows())
        rows, row_of = self._merged(words, push(empty_list(tf.int64), finished))
        return rows, tf.gather(row_of, tf.math.invert_permutation(tf.cast(order, tf.int32)))

    def _merged(self, words: tf.RaggedTensor, done: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        symbols, owner = self._initial_symbols(words)
        return self._merge(symbols, owner, tf.cast(words.nrows(), tf.int32), done)

    def _initial_symbols(self, words: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Symbol ids of each word's characters (flat) and the word each belongs to."""
        cps = words.values
        owner = row_ids(words)
        ids = self._character_symbols(words, owner)
        known = ids >= 0
        if self.byte_fallback:
            return self._bytes_for_unknown(cps, ids, known, owner)
        if self.unk_id is None:
            return select(ids, known), select(owner, known)
        unknown = ~known
        ids = tf.where(known, ids, self.unk_id)
        if self.fuse_unk:
            same_word = previous(owner, -1) == owner
            keep = ~(unknown & previous(unknown, False) & same_word)
            return select(ids, keep), select(owner, keep)
        return ids, owner

    def _character_symbols(self, words: tf.RaggedTensor, owner: tf.Tensor) -> tf.Tensor:
        """Each character's id: alone, with prefix (not first), suffix (last) or both."""
        columns = self.characters.lookup(words.values)
        if len(columns) == 1:
            return columns[0]
        starts = tf.cast(tf.gather(words.row_splits, owner), tf.int32)
        ends = tf.cast(tf.gather(words.row_splits[1:], owner), tf.int32)
        position = tf.range(tf.size(owner))
        column = tf.cast(position > starts, tf.int32) + 2 * tf.cast(position == ends - 1, tf.int32)
        return tf.gather(tf.stack(columns, axis=1), column, batch_dims=1)

    def _bytes_for_unknown(self, cps, ids, known, owner) -> tuple[tf.Tensor, tf.Tensor]:
        """Replace each unknown character by the tokens of its UTF-8 bytes."""
        count = tf.where(known, 1, utf8_lengths(cps))
        source, within = expand(count)
        cp = tf.gather(cps, source)
        length = tf.gather(count, source)
        byte = utf8_byte(cp, length, within)
        # Known characters keep their id; their "byte" (the code point) must not index the table.
        byte_ids = tf.gather(self.byte_ids, tf.where(tf.gather(known, source), 0, byte))
        expanded = tf.where(tf.gather(known, source), tf.gather(ids, source), byte_ids)
        return expanded, tf.gather(owner, source)

    def _merge(self, symbols: tf.Tensor, owner: tf.Tensor, num_words: tf.Tensor, done: tf.Tensor):
        """Apply merges until no chunk has a mergeable pair left; [chunks, (ids)] in the order
        the chunks finished, and the row of each chunk.

        Each step costs a few ops per symbol still merging (a lookup, a segment min, two
        compactions): finished chunks are pushed to a list, whole and in order.
        """
        state = _separated(symbols, owner, num_words)

        def step(state, done):
            key = tf.bitwise.left_shift(state, 32) | tf.bitwise.bitwise_and(
                following(state, SEPARATOR), LOW
            )
            packed = self.merges.lookup(key)
            chunk = tf.bitwise.right_shift(state, 32)
            lowest = tf.gather(tf.math.segment_min(packed, chunk), chunk)
            finished = lowest == NO_MERGE
            guarded = tf.bitwise.bitwise_and(packed, GUARDED) != 0
            chosen = ((packed == lowest) | guarded) & ~finished
            merge = tf.cond(
                tf.reduce_any(chosen & previous(chosen, False)),
                lambda: _non_overlapping(chosen),
                lambda: chosen,
            )
            merged = tf.bitwise.bitwise_or(
                tf.bitwise.bitwise_and(state, HIGH), tf.bitwise.bitwise_and(packed, MERGED_ID)
            )
            state = tf.where(merge, merged, state)
            kept = select(state, ~(previous(merge, False) | finished))
            return kept, push(done, select(state, finished))

        _, done = tf.while_loop(
            lambda state, _: tf.size(state) > 0,
            step,
            (state, done),
            shape_invariants=(tf.TensorShape([None]), HANDLE_SHAPE),
        )
        return _rows_at_separators(concat(done, tf.int64))


def _rebuilt_whole(component: dict) -> dict[str, int]:
    """The tokens the reference's merges rebuild whole from their characters."""
    reference = reference_tokenizer(model={**component, "ignore_merges": False}).model
    return {
        token: token_id
        for token, token_id in component["vocab"].items()
        if [t.id for t in reference.tokenize(token)] == [token_id]
    }


def _finished_whole(ids: tf.Tensor, first_number: tf.Tensor) -> tf.Tensor:
    """The loop's output for chunks taken whole, numbered from `first_number` on."""
    numbers = tf.range(tf.size(ids, out_type=tf.int64)) + first_number
    numbers = tf.bitwise.left_shift(numbers, 32)
    pairs = tf.stack([numbers | tf.cast(ids, tf.int64), numbers | SEPARATOR], axis=1)
    return tf.reshape(pairs, [-1])


def _separated(symbols: tf.Tensor, owner: tf.Tensor, num_words: tf.Tensor) -> tf.Tensor:
    """chunk << 32 | symbol for every symbol (owner sorted), a separator after each chunk."""
    chunks = tf.range(num_words)
    ends = tf.cumsum(bincount(owner, num_words))
    values = tf.bitwise.left_shift(tf.cast(owner, tf.int64), 32) | tf.cast(symbols, tf.int64)
    separators = tf.bitwise.left_shift(tf.cast(chunks, tf.int64), 32) | SEPARATOR
    return tf.dynamic_stitch(
        [tf.range(tf.size(owner)) + owner, ends + chunks], [values, separators]
    )


def _non_overlapping(chosen: tf.Tensor) -> tf.Tensor:
    """Overlapping occurrences (x x x) merge leftmost first: every other one of a run (the
    loop only pays for this, a cumsum and two segment passes, when some run exists).

    A run and the unchosen pair before it share a segment id (unchosen pairs so far); a pair
    merges when an even number of chosen pairs of its segment precede it.
    """
    count = tf.cast(chosen, tf.int32)
    through = tf.cumsum(count)
    segment = tf.range(1, tf.size(count) + 1) - through
    before = through - count
    first = tf.gather(tf.math.segment_min(before, segment), segment)
    return chosen & (tf.bitwise.bitwise_and(before - first, 1) == 0)


def _rows_at_separators(state: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """Finished symbols (each chunk ending in its separator) → rows, and each chunk's row."""
    symbols = tf.cast(tf.bitwise.bitwise_and(state, LOW), tf.int32)
    at = tf.where(symbols == SEPARATOR)[:, 0]
    ends = at - tf.range(tf.size(at, out_type=tf.int64))
    rows = tf.RaggedTensor.from_row_splits(
        select(symbols, symbols != SEPARATOR),
        tf.concat([tf.zeros([1], tf.int64), ends], 0),
        validate=False,
    )
    chunk_of_row = tf.cast(tf.bitwise.right_shift(tf.gather(state, at), 32), tf.int32)
    return rows, tf.math.invert_permutation(chunk_of_row)
