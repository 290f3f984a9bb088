"""Pointer doubling: following pointers through a forest in log2(depth) rounds, not depth steps.

Every node points to another (a root points to itself). Each round replaces every pointer by
its target's pointer, so after round k a pointer spans 2^k steps: paths as long as a whole
text are walked in a few dozen vectorised gathers instead of one loop step per node.
"""

from __future__ import annotations

import tensorflow as tf

# Rounds per loop turn: each turn adds the loop's own ops (and, inside a functional If, a
# function call), and rounds after the pointers stop moving change nothing.
ROUNDS_PER_TURN = 2


def reached(start: tf.Tensor, jump: tf.Tensor) -> tf.Tensor:
    """Whether each node is reached from a node where `start` is 1 (int32) following
    `jump` (a node pointing to itself ends a path). After the round with jumps of 2^k
    steps, the marks reach 2^(k+1) - 1 steps on."""
    count = tf.size(jump)

    def marked_further(marked, jump):
        marked_at_target = tf.math.unsorted_segment_max(marked, jump, count)
        return tf.maximum(marked, marked_at_target), jump, tf.gather(jump, jump)

    def rounds(marked, jump, further):
        for _ in range(ROUNDS_PER_TURN):
            marked, jump, further = marked_further(marked, further)
        return marked, jump, further

    marked, _, _ = tf.while_loop(
        lambda _, jump, further: tf.reduce_any(tf.not_equal(jump, further)),
        rounds,
        marked_further(start, jump),
    )
    return tf.equal(marked, 1)


def climb(up: tf.Tensor, steps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(top, distance) for each node following `up` (a node is its own top when `up` points
    to itself) and adding up `steps`."""

    def double(up, steps):
        return tf.gather(up, up), steps + tf.gather(steps, up)

    return tf.while_loop(
        lambda up, _: tf.reduce_any(tf.not_equal(tf.gather(up, up), up)), double, (up, steps)
    )
