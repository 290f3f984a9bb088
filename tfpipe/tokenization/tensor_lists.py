"""Lists of 1-D tensors grown inside `tf.while_loop`, with ops every TF 2.x runtime runs.

`tf.TensorArray(dynamic_size=True)` grows through TensorListSetItem's
`resize_if_index_out_of_bounds` attribute, which TF 2.12's kernel does not know: a SavedModel
using it loads in older TensorFlow / TF Serving and then fails on its first request. Pushing
onto a TensorList (TensorListPushBack, in every TF 2.x) grows it everywhere.
"""

from __future__ import annotations

import tensorflow as tf

# The loop shape invariant of a list handle (a scalar variant).
HANDLE_SHAPE = tf.TensorShape([])
_VECTOR = [-1]


def empty_list(dtype: tf.DType, element_shape: list[int] = _VECTOR) -> tf.Tensor:
    """An empty list of tensors of `element_shape` (-1: any size; the first may vary)."""
    return tf.raw_ops.EmptyTensorList(
        element_shape=tf.constant(element_shape, tf.int32), max_num_elements=-1,
        element_dtype=dtype,
    )


def split(values: tf.Tensor, lengths: tf.Tensor, element_shape: list[int] = _VECTOR) -> tf.Tensor:
    """A list of consecutive slices of `values` along its first axis, of `lengths` rows."""
    return tf.raw_ops.TensorListSplit(
        tensor=values,
        element_shape=tf.constant(element_shape, tf.int32),
        lengths=tf.cast(lengths, tf.int64),
    )


def item(
    handle: tf.Tensor, index: tf.Tensor, dtype: tf.DType, element_shape: list[int] = _VECTOR
) -> tf.Tensor:
    return tf.raw_ops.TensorListGetItem(
        input_handle=handle,
        index=index,
        element_shape=tf.constant(element_shape, tf.int32),
        element_dtype=dtype,
    )


def push(handle: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    return tf.raw_ops.TensorListPushBack(input_handle=handle, tensor=values)


def concat(handle: tf.Tensor, dtype: tf.DType, element_shape: list[int] = _VECTOR) -> tf.Tensor:
    """All pushed tensors joined along their first axis (empty when nothing was pushed)."""
    return concat_with_lengths(handle, dtype, element_shape)[0]


def concat_with_lengths(
    handle: tf.Tensor, dtype: tf.DType, element_shape: list[int] = _VECTOR
) -> tuple[tf.Tensor, tf.Tensor]:
    """`concat`, and how many rows each pushed tensor gave (int64)."""
    return tf.raw_ops.TensorListConcatV2(
        input_handle=handle,
        element_shape=tf.constant(element_shape, tf.int32),
        leading_dims=tf.zeros([0], tf.int64),
        element_dtype=dtype,
    )
