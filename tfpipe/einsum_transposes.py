"""Transposes traced as one-operand `Einsum` ops, which oneDNN builds of TensorFlow run far
faster on small tensors.

With oneDNN on (the x86 default), TensorFlow swaps every graph `Transpose` for
`_MklTranspose`, which sets up a oneDNN reorder on each call: about 35 µs for the small
attention tensors of a short request, against 1.5 µs for the same move as an `Einsum`
("abcd->acbd", run as `_MklEinsum`), which is no slower on large ones. transformers'
attention transposes its queries, keys, values and context four times a layer: 24 times per
MiniLM request, 14% of a 10-word request's latency (docs/benchmarks.md). An `Einsum` with
one operand only moves data, so results are bit for bit the same; it is a core op of
TensorFlow 2.12, the oldest runtime exports are checked against.

The model code is transformers', so `tf.transpose` itself is swapped while tfpipe traces the
model, under a lock, and restored after. Eager calls run unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import string
import threading
from collections.abc import Iterator, Sequence

import tensorflow as tf

# Held while `tf.transpose` is swapped: two threads tracing at once must not restore each
# other's swap. Re-entrant, so a model traced inside another's trace does not wait on itself.
_SWAPPED = threading.RLock()
# Dtypes the Einsum kernel of TensorFlow 2.12 and later takes.
EINSUM_DTYPES = frozenset({tf.float16, tf.bfloat16, tf.float32, tf.float64})


def einsum_equation(perm: Sequence[int] | None, rank: int) -> str | None:
    """The one-operand Einsum equation that moves axes as `tf.transpose(perm=perm)` does
    (None reverses them; negative axes count from the end); None when `perm` is no
    permutation of `rank` axes known when traced."""
    if perm is None:
        perm = list(range(rank))[::-1]
    if (
        not isinstance(perm, list | tuple)
        or len(perm) != rank
        or rank > len(string.ascii_letters)
        or not all(isinstance(axis, int) and -rank <= axis < rank for axis in perm)
    ):
        return None
    axes = [axis % rank for axis in perm]
    if sorted(axes) != list(range(rank)):
        return None
    letters = string.ascii_letters[:rank]
    return f"{letters}->{''.join(letters[axis] for axis in axes)}"


def _einsum_transpose(original, a, perm=None, conjugate=False, name="transpose"):
    """`tf.transpose`, as an Einsum where the permutation and rank are known when traced."""
    equation = None
    if isinstance(a, tf.Tensor) and a.dtype in EINSUM_DTYPES and a.shape.rank is not None:
        equation = None if conjugate else einsum_equation(perm, a.shape.rank)
    if equation is None:
        return original(a, perm=perm, conjugate=conjugate, name=name)
    return tf.einsum(equation, a, name=name)


@contextlib.contextmanager
def einsum_transposes() -> Iterator[None]:
    """Within the block, graph code calling `tf.transpose` traces an Einsum instead."""
    if tf.executing_eagerly():
        yield
        return
    with _SWAPPED:
        original = tf.transpose
        tf.transpose = functools.partial(_einsum_transpose, original)
        try:
            yield
        finally:
            tf.transpose = original
