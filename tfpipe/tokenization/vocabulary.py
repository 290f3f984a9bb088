"""String → id lookup tables (core `HashTableV2` ops, initialised from graph constants)."""

from __future__ import annotations

import tensorflow as tf


def string_table(entries: dict[str, int]) -> tf.lookup.StaticHashTable:
    """A static table from token text to id; unknown keys look up as -1."""
    keys = tf.constant(list(entries), tf.string)
    values = tf.constant(list(entries.values()), tf.int32)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1
    )
