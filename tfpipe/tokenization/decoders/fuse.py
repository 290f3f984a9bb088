"""`Fuse`: each row's tokens become one."""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.decoders.tokens import joined_rows
from tfpipe.tokenization.ragged_ops import one_per_row


class Fuse:
    def __init__(self, component: dict) -> None:
        del component  # no options

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        return one_per_row(joined_rows(tokens))
