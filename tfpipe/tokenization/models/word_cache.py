"""A bounded cache of words' tokens kept across calls, as `tokenizers` keeps one per model.

The reference's BPE and Unigram models remember the tokens of the words they segment: up to
10,000 words shorter than 256 bytes, kept as first met, never evicted (`utils/cache.rs`).
Text repeats its words, so a batch's known words skip the model's passes. Here the cache is
a `MutableHashTable` (core ops) from a word's UTF-8 string to a fixed-width row of its token
values, -1 padded (the table holds no variable-length values); a word with more tokens than
the row holds is not kept. Memory stays bounded: 10,000 × (a key under 256 bytes + a row of
256 bytes), about 5 MB. Contents are never saved (they are the text a process has seen):
every load of an export starts empty.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import select

CAPACITY = 10_000
MAX_WORD_BYTES = 256
ROW_WIDTH = 32


class UnsavedTable(tf.lookup.experimental.MutableHashTable):
    """A MutableHashTable that checkpoints and SavedModels do not keep: its contents would
    be the text the process tokenized before export (`checkpoint=False` does not stop TF2
    saving them). No saveables, rather than empty `_serialize_to_tensors`: that still writes
    save and restore functions, which TensorFlow 2.12's loader cannot read."""

    def _gather_saveables_for_checkpoint(self) -> dict:
        return {}


class WordCache(tf.Module):
    """Word string → its token values (int64), filled until `capacity` words."""

    def __init__(self, capacity: int = CAPACITY, width: int = ROW_WIDTH) -> None:
        super().__init__(name="word_cache")
        self.capacity = capacity
        self.width = width
        self.table = UnsavedTable(
            tf.string, tf.int64, default_value=tf.fill([width], tf.constant(-1, tf.int64))
        )

    def lookup(self, strings: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """([words, (token values)], whether each word was found; empty rows where not)."""
        values = tf.reshape(self.table.lookup(strings), [-1, self.width])
        kept = values >= 0
        lengths = tf.reduce_sum(tf.cast(kept, tf.int64), axis=1)
        flat = select(tf.reshape(values, [-1]), tf.reshape(kept, [-1]))
        return tf.RaggedTensor.from_row_lengths(flat, lengths, validate=False), lengths > 0

    def insert(self, strings: tf.Tensor, rows: tf.RaggedTensor, complete: tf.Tensor) -> None:
        """Keep the rows (non-negative values) of the distinct words where `complete` holds,
        as far as they fit: a word under `MAX_WORD_BYTES`, a row of at most `width` values,
        room left (words of earlier calls win, as in the reference)."""
        fits = (
            complete
            & (rows.row_lengths() <= self.width)
            & (tf.strings.length(strings) < MAX_WORD_BYTES)
        )
        room = self.capacity - self.table.size()
        take = fits & (tf.cumsum(tf.cast(fits, tf.int64)) <= room)
        kept = select(rows, take).to_tensor(-1, shape=[None, self.width])
        self.table.insert(select(strings, take), kept)
