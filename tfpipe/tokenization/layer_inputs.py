"""What `TokenizerLayer` takes: its padding and truncation options as HF spells them, and
its text inputs, checked with errors that name them."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.truncation import STRATEGIES

PADDING = ("longest", "max_length")


def padding_mode(padding) -> str | None:
    if padding is True:
        return "longest"
    if padding in (False, None, "do_not_pad"):
        return None
    if padding not in PADDING:
        raise ValueError(f"padding must be one of True, False, {PADDING} or 'do_not_pad'")
    return padding


def truncation_strategy(truncation) -> str | None:
    if truncation is True:
        return "longest_first"
    if truncation in (False, None, "do_not_truncate"):
        return None
    if truncation not in STRATEGIES:
        raise ValueError(f"truncation must be True, False or one of {STRATEGIES}")
    return truncation


def check_text_batch(text, name: str) -> tf.Tensor:
    """A rank-1 tf.string tensor, or a clear TypeError / InvalidArgumentError naming `name`.

    The rank is also checked when the graph runs: a SavedModel signature declares `[None]`,
    but neither a TF2 signature call nor a model server's session enforces it, and kernels
    fed another rank fail with errors that name no input. EnsureShape does it, its node named
    after the input, because grappler keeps it while it folds an Assert on the rank to the
    declared, trusted shape.
    """
    if isinstance(text, tf.RaggedTensor | tf.SparseTensor):
        raise TypeError(f"{name} must be a dense 1-D tf.string tensor, got {type(text).__name__}")
    text = tf.convert_to_tensor(text)
    if text.dtype != tf.string:
        raise TypeError(f"{name} must be a tf.string tensor, got dtype {text.dtype.name}")
    if text.shape.rank is not None and text.shape.rank != 1:
        raise tf.errors.InvalidArgumentError(
            None, None, f"{name} must be a 1-D batch of strings, got shape {text.shape}"
        )
    return tf.ensure_shape(text, [None], name=f"{name}.must_be_a_1-D_batch")


def check_same_batch(text: tf.Tensor, text_pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(text, text_pair), usable only once their batch sizes are known to agree."""
    sizes = [tf.size(text), tf.size(text_pair)]
    check = tf.debugging.Assert(
        tf.equal(*sizes), ["text and text_pair must have the same batch size, got", *sizes]
    )
    with tf.control_dependencies([check]):
        return tf.identity(text), tf.identity(text_pair)
