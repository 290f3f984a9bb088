"""The BPE model: merges applied by rank, exactly as `tokenizers` applies them.

A word starts as one symbol per character (with `continuing_subword_prefix` on all but the
first and `end_of_word_suffix` on the last); characters outside the vocabulary become their
`<0xXX>` byte tokens (`byte_fallback`) or the unknown token (consecutive ones fused with
`fuse_unk`), or are dropped when there is no unknown token. Then the lowest-ranked mergeable
pair is merged, leftmost first, until none is left; `ignore_merges` takes whole-word vocabulary
entries as they are.

In the graph each distinct word of the batch is processed once, and every loop step merges, in
every word at once, all non-overlapping occurrences of that word's lowest-ranked pair — the
same result as the reference's priority queue, because a pair created by a merge always ranks
after the merge that created it. Character-to-symbol ids are code point tables.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS, BlockTable
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.wordpiece import utf8_lengths
from tfpipe.tokenization.ragged_ops import following, previous, repeat_range, row_ids
from tfpipe.tokenization.vocabulary import string_table

SECTION = "model"
NO_RANK = np.int64(2**62)


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


class BPE(tf.Module):
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
        self.characters = BlockTable.from_dense(*_character_ids(vocab, prefix, suffix))
        pairs = _merge_pairs(component, vocab, prefix)
        keys = np.array([(a << 32) | b for a, b in pairs], np.int64)
        values = np.array([(rank << 32) | new for rank, new in pairs.values()], np.int64)
        self.merges = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys.reshape(-1), tf.int64), tf.constant(values.reshape(-1), tf.int64)
            ),
            default_value=-1,
        )
        self.vocab = string_table(vocab) if self.ignore_merges else None

    def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[words, (code points)] → [words, (token ids)]."""
        strings = tf.strings.unicode_encode(words, "UTF-8")
        unique, inverse = tf.unique(strings, out_idx=tf.int32)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(strings)), inverse, tf.size(unique))
        return tf.gather(self._tokenize(unique, tf.gather(words, first)), inverse)

    def _tokenize(self, strings: tf.Tensor, words: tf.RaggedTensor) -> tf.RaggedTensor:
        num_words = tf.size(strings)
        symbols, owner = self._initial_symbols(words)
        if self.ignore_merges:
            whole = self.vocab.lookup(strings)
            listed = tf.gather(whole >= 0, owner)
            symbols = tf.concat(
                [tf.boolean_mask(symbols, ~listed), tf.boolean_mask(whole, whole >= 0)], 0
            )
            owner = tf.concat(
                [tf.boolean_mask(owner, ~listed), tf.cast(tf.where(whole >= 0)[:, 0], tf.int32)], 0
            )
            order = tf.argsort(owner, stable=True)
            symbols, owner = tf.gather(symbols, order), tf.gather(owner, order)
            merged, owner = self._merge(symbols, owner, num_words)
        else:
            merged, owner = self._merge(symbols, owner, num_words)
        return tf.RaggedTensor.from_value_rowids(
            merged, tf.cast(owner, tf.int64), nrows=tf.cast(num_words, tf.int64), validate=False
        )

    def _initial_symbols(self, words: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Symbol ids of each word's characters (flat) and the word each belongs to."""
        cps = words.values
        owner = row_ids(words)
        starts = tf.cast(tf.gather(words.row_splits, owner), tf.int32)
        ends = tf.cast(tf.gather(words.row_splits[1:], owner), tf.int32)
        position = tf.range(tf.size(cps))
        column = tf.cast(position > starts, tf.int32) + 2 * tf.cast(position == ends - 1, tf.int32)
        ids = tf.gather(tf.stack(self.characters.lookup(cps), axis=1), column, batch_dims=1)
        known = ids >= 0
        if self.byte_fallback:
            return self._bytes_for_unknown(cps, ids, known, owner)
        if self.unk_id is None:
            return tf.boolean_mask(ids, known), tf.boolean_mask(owner, known)
        unknown = ~known
        ids = tf.where(known, ids, self.unk_id)
        if self.fuse_unk:
            same_word = previous(owner, -1) == owner
            keep = ~(unknown & previous(unknown, False) & same_word)
            return tf.boolean_mask(ids, keep), tf.boolean_mask(owner, keep)
        return ids, owner

    def _bytes_for_unknown(self, cps, ids, known, owner) -> tuple[tf.Tensor, tf.Tensor]:
        """Replace each unknown character by the tokens of its UTF-8 bytes."""
        count = tf.where(known, 1, utf8_lengths(cps))
        source = repeat_range(count)
        within = tf.range(tf.size(source)) - tf.gather(tf.cumsum(count, exclusive=True), source)
        cp = tf.gather(cps, source)
        length = tf.gather(count, source)
        byte = utf8_byte(cp, length, within)
        # Known characters keep their id; their "byte" (the code point) must not index the table.
        byte_ids = tf.gather(self.byte_ids, tf.where(tf.gather(known, source), 0, byte))
        expanded = tf.where(tf.gather(known, source), tf.gather(ids, source), byte_ids)
        return expanded, tf.gather(owner, source)

    def _merge(self, symbols: tf.Tensor, owner: tf.Tensor, num_words: tf.Tensor):
        """Apply merges until no word has a mergeable pair left."""

        def step(symbols, owner, _):
            pair_in_word = following(owner, -1) == owner
            keys = tf.bitwise.left_shift(tf.cast(symbols, tf.int64), 32) | tf.cast(
                following(symbols, 0), tf.int64
            )
            packed = self.merges.lookup(keys)
            mergeable = pair_in_word & (packed >= 0)
            rank = tf.where(mergeable, tf.bitwise.right_shift(packed, 32), NO_RANK)
            lowest = tf.math.unsorted_segment_min(rank, owner, num_words)
            chosen = mergeable & (rank == tf.gather(lowest, owner))
            # Overlapping occurrences (x x x) merge leftmost first: every other one of a run.
            run_start = chosen & ~previous(chosen, False)
            run = tf.maximum(tf.cumsum(tf.cast(run_start, tf.int32)) - 1, 0)
            run_starts = tf.concat([tf.cast(tf.where(run_start)[:, 0], tf.int32), [0]], 0)
            run_first = tf.gather(run_starts, run)
            offset = tf.range(tf.size(symbols)) - run_first
            merge = chosen & (tf.math.floormod(offset, 2) == 0)
            merged_id = tf.cast(tf.bitwise.bitwise_and(packed, 0xFFFFFFFF), tf.int32)
            symbols = tf.where(merge, merged_id, symbols)
            keep = ~previous(merge, False)
            return (
                tf.boolean_mask(symbols, keep),
                tf.boolean_mask(owner, keep),
                tf.reduce_any(merge),
            )

        symbols, owner, _ = tf.while_loop(
            lambda _s, _o, changed: changed,
            step,
            (symbols, owner, tf.constant(True)),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
        )
        return symbols, owner


def utf8_byte(cps: tf.Tensor, length: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Byte `index` of the UTF-8 encoding (of `length` bytes) of each code point."""
    lead_mark = tf.gather([0, 0, 0xC0, 0xE0, 0xF0], length)
    shift = 6 * (length - 1 - index)
    payload = tf.bitwise.right_shift(cps, shift)
    lead = tf.where(length == 1, cps, tf.bitwise.bitwise_or(lead_mark, payload))
    continuation = tf.bitwise.bitwise_or(0x80, tf.bitwise.bitwise_and(payload, 0x3F))
    return tf.where(index == 0, lead, continuation)
