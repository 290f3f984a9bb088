"""`Strip`: leading and/or trailing whitespace removed from every row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import BlockTable
from tfpipe.tokenization.normalizers.stages import whitespace_classes
from tfpipe.tokenization.ragged_ops import mask_values, positions_in_rows, row_ids, select


@dataclass
class Strip:
    """`Strip`: drop leading and/or trailing whitespace of every row."""

    whitespace: np.ndarray
    left: bool
    right: bool

    def __post_init__(self) -> None:
        self.table = BlockTable.from_dense(self.whitespace)

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        return mask_values(cps, self._kept(cps))

    def apply_aligned(self, cps, alignment):
        """What is kept keeps its alignment."""
        keep = self._kept(cps)
        return mask_values(cps, keep), select(alignment, keep)

    def _kept(self, cps: tf.RaggedTensor) -> tf.Tensor:
        (space,) = self.table.lookup(cps.values)
        ids = row_ids(cps)
        position = positions_in_rows(cps, ids)
        nrows = cps.nrows(out_type=tf.int32)
        keep = tf.ones_like(ids, tf.bool)
        if self.left:
            text = tf.where(space > 0, tf.int32.max, position)
            keep &= position >= tf.gather(tf.math.unsorted_segment_min(text, ids, nrows), ids)
        if self.right:
            text = tf.where(space > 0, -1, position)
            keep &= position <= tf.gather(tf.math.unsorted_segment_max(text, ids, nrows), ids)
        return keep


def compile_strip(component: dict) -> list[Strip]:
    """Whitespace is Rust's char::is_whitespace, as the reference strips it."""
    return [
        Strip(
            whitespace_classes(),
            left=bool(component.get("strip_left", True)),
            right=bool(component.get("strip_right", True)),
        )
    ]
