"""`Prepend`: text put in front of every non-empty row."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import concat_rows


@dataclass
class Prepend:
    """`Prepend`: put `content` in front of every non-empty row."""

    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        prefix = tf.constant([ord(c) for c in self.content], cps.values.dtype)
        nonempty = tf.cast(cps.row_lengths() > 0, cps.row_splits.dtype)
        repeats = tf.size(prefix, out_type=cps.row_splits.dtype)
        within = tf.math.floormod(
            tf.range(tf.reduce_sum(nonempty) * repeats), tf.maximum(repeats, 1)
        )
        prefixes = tf.RaggedTensor.from_row_lengths(
            tf.gather(prefix, within), nonempty * repeats, validate=False
        )
        return concat_rows([prefixes, cps])


def compile_prepend(component: dict) -> list[Prepend]:
    """An empty `prepend` changes nothing and compiles to no stage."""
    return [Prepend(component.get("prepend", ""))] if component.get("prepend") else []
