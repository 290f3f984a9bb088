"""A batch encoded in two halves that run side by side, on two threads.

A tokenizer's graph is a chain of small ops, so a batch otherwise runs on one core. Each half
is one call of the same traced encoder, and every text is encoded alone, so the concatenated
rows are the whole batch's. Why and what it gains: docs/how-it-works.md#the-pipeline.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfpipe.tokenization.control_flow import functional_cond

# The ops that run a half: a function call, or the `If` holding the second half's call.
HALF_OPS = ("PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf")


def encode_in_halves(encode: Callable, signature: list[tf.TensorSpec]) -> Callable:
    """A function of a batch of strings that calls the traced `encode` on each half of a
    batch of two or more texts (already at two the halves are not slower: same-process A/Bs,
    docs/how-it-works.md#the-pipeline), or once on a single text."""
    whole = tf.function(encode, input_signature=signature, autograph=False)

    def encode_batch(texts: tf.Tensor):
        count = tf.size(texts)
        # The first half takes the odd text, so a single text is all first half.
        cut = (count + 1) // 2
        outputs = whole.get_concrete_function().structured_outputs

        def no_rows():
            return tf.nest.map_structure(_no_rows, outputs, expand_composites=False)

        first, second = _independent_calls(
            lambda: (
                whole(texts[:cut]),
                functional_cond(cut < count, lambda: whole(texts[cut:]), no_rows),
            )
        )
        return tf.nest.map_structure(lambda a, b: tf.concat([a, b], 0), first, second)

    return encode_batch


def _no_rows(like: tf.RaggedTensor) -> tf.RaggedTensor:
    """A batch of no rows of `like`'s dtype, ragged rank and inner dimensions (offsets are
    pairs), which the encoders know statically."""
    values = tf.zeros([0, *like.flat_values.shape[1:]], like.flat_values.dtype)
    for _ in range(like.ragged_rank):
        values = tf.RaggedTensor.from_row_splits(
            values, tf.zeros([1], like.row_splits.dtype), validate=False
        )
    return values


def _independent_calls(make_calls: Callable):
    """`make_calls()`, the function calls it makes free of automatic control dependencies.

    A traced function orders every op touching a resource after the last one that wrote
    it, so the second half's call would wait for the first to end wherever the encoder
    writes (Unigram's word cache: a lookup, then an insert). What either call writes
    changes nothing any op computes (the cache only saves work), which is what
    `run_independently` is for.
    """
    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_operations())
    result = make_calls()
    for op in graph.get_operations()[before:]:
        if op.type in HALF_OPS:
            graph.experimental_acd_manager.run_independently(op)
    return result
