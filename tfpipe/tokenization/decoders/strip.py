"""`Strip`: up to `start` leading and `stop` trailing `content` characters off each token.

tokenizers panics on a token of `content` characters shorter than `start + stop` (its cuts
cross); such a token becomes empty here.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import INT32_MAX, mask_values, positions_in_rows, row_ids


class Strip:
    def __init__(self, component: dict) -> None:
        content = component.get("content", " ")
        if not isinstance(content, str) or len(content) != 1:
            raise UnsupportedComponentError("decoder", "Strip", f"content {content!r}")
        self.content = ord(content)
        self.start = int(component.get("start", 0))
        self.stop = int(component.get("stop", 0))

    def __call__(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        cps = tf.strings.unicode_decode(tokens.values, "UTF-8")
        owner = row_ids(cps)
        count = cps.nrows(out_type=tf.int32)
        position = positions_in_rows(cps, owner)
        length = tf.cast(cps.row_lengths(), tf.int32)
        other = tf.not_equal(cps.values, self.content)
        first_other = tf.math.unsorted_segment_min(
            tf.where(other, position, INT32_MAX), owner, count
        )
        last_other = tf.math.unsorted_segment_max(tf.where(other, position, -1), owner, count)
        start_cut = tf.minimum(tf.minimum(first_other, length), self.start)
        stop_cut = length - tf.minimum(length - 1 - last_other, self.stop)
        keep = (position >= tf.gather(start_cut, owner)) & (position < tf.gather(stop_cut, owner))
        kept = mask_values(cps, keep)
        return tokens.with_values(tf.strings.unicode_encode(kept, "UTF-8"))
