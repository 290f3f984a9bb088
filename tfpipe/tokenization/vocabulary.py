"""String → id lookup tables (core `HashTableV2` ops, initialised from graph constants)."""

from __future__ import annotations

import tensorflow as tf

# Keys no lookup asks for, holding an empty table's place (HashTableV2 cannot be empty):
# a lone 0xFF byte is never valid UTF-8, and integer keys are never negative.
UNUSED_STRING_KEY, UNUSED_INT_KEY = b"\xff", -1


def string_table(entries: dict[str, int]) -> tf.lookup.StaticHashTable:
    """A static table from token text to id; unknown keys look up as -1."""
    return static_table(list(entries), list(entries.values()), tf.string, tf.int32, -1)


def static_table(keys, values, key_dtype, value_dtype, default) -> tf.lookup.StaticHashTable:
    """A StaticHashTable of `keys` → `values`, which may be empty (every lookup: `default`)."""
    if len(keys) == 0:
        keys = [UNUSED_STRING_KEY if key_dtype == tf.string else UNUSED_INT_KEY]
        values = [default]
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, key_dtype), tf.constant(values, value_dtype)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=default)
