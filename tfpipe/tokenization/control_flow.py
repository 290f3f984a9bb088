"""Conditionals whose untaken branch costs nothing.

TensorFlow lowers a `tf.cond` in a graph function to Switch/Merge nodes: both branches sit in
the caller's graph and every node of the untaken branch is still visited, as dead. For a large
branch that small requests skip (WordPiece's walk for words outside the vocabulary: some
hundred nodes), those visits are a measurable share of a batch-1 request. A functional `If`
runs only the branch it takes, for the price of one function call.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

IF_OPS = ("If", "StatelessIf")


def functional_cond(pred: tf.Tensor, true_fn: Callable, false_fn: Callable):
    """`tf.cond(pred, true_fn, false_fn)`, kept a functional `If` op (not lowered)."""
    result = tf.cond(pred, true_fn, false_fn)
    if tf.executing_eagerly():
        return result
    for output in tf.nest.flatten(result, expand_composites=True):
        op = output.op.inputs[0].op if output.op.type == "Identity" else output.op
        if op.type in IF_OPS:
            op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))
    return result
