"""Padding, as `tokenizers` does it (`PaddingParams`): to the longest row of the batch or to
`max_length`, rounded up to `pad_to_multiple_of`, on the right or the left."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Padding:
    """What padded outputs look like; `width` is computed per batch in the graph."""

    strategy: str
    pad_id: int
    pad_type_id: int
    left: bool
    max_length: int | None = None
    multiple: int | None = None

    def width(self, lengths: tf.Tensor) -> tf.Tensor:
        """The padded length for rows of `lengths` tokens (0 for an empty batch)."""
        width = tf.reduce_max(tf.concat([[0], lengths], 0))
        if self.strategy == "max_length":
            width = tf.maximum(width, self.max_length)
        if self.multiple:
            width = (width + self.multiple - 1) // self.multiple * self.multiple
        return width
