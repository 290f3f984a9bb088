"""`Prepend`: text put in front of every non-empty row."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import concat_rows, row_ids


@dataclass
class Prepend:
    """`Prepend`: put `content` in front of every non-empty row."""

    content: str

    def apply(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        return concat_rows([self._prefixes(cps), cps])

    def apply_aligned(self, cps, alignment):
        """The prepended code points take the alignment of the first one."""
        prefixes = self._prefixes(cps)
        first = tf.gather(tf.cast(cps.row_starts(), tf.int32), row_ids(prefixes))
        source = concat_rows(
            [prefixes.with_values(first), cps.with_values(tf.range(tf.size(cps.values)))]
        )
        return concat_rows([prefixes, cps]), tf.gather(alignment, source.values)

    def _prefixes(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        """`content` for every non-empty row, nothing for the others."""
        prefix = tf.constant([ord(c) for c in self.content], cps.values.dtype)
        nonempty = tf.cast(cps.row_lengths() > 0, cps.row_splits.dtype)
        repeats = tf.size(prefix, out_type=cps.row_splits.dtype)
        within = tf.math.floormod(
            tf.range(tf.reduce_sum(nonempty) * repeats), tf.maximum(repeats, 1)
        )
        return tf.RaggedTensor.from_row_lengths(
            tf.gather(prefix, within), nonempty * repeats, validate=False
        )


def compile_prepend(component: dict) -> list[Prepend]:
    """An empty `prepend` changes nothing and compiles to no stage."""
    return [Prepend(component.get("prepend", ""))] if component.get("prepend") else []
