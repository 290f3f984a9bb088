"""`FixedLength`: every piece cut into chunks of `length` code points (the last may be shorter)."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, split_kept
from tfpipe.tokenization.ragged_ops import positions_in_rows

DEFAULT_LENGTH = 5  # the reference's serde default
# A longer chunk than any text can hold: positions are int32.
LONGEST = 2**31 - 1


@dataclass
class FixedLength:
    """Boundaries every `length` kept code points, counted from each piece's start."""

    length: int
    # No per-code-point class for SplitPhase's packed table.
    classes = None

    def apply(self, values, cls, starts, removed):
        return split_kept(values, starts, removed, self._chunks)

    def _chunks(self, pieces: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        boundary = positions_in_rows(pieces) % self.length == 0
        return boundary, tf.zeros_like(boundary)


def compile_fixed_length(component: dict) -> list[FixedLength]:
    """Length 0 is refused: the reference panics on any non-empty text."""
    length = component.get("length", DEFAULT_LENGTH)
    if not isinstance(length, int) or length <= 0:
        raise UnsupportedComponentError(
            SECTION, "FixedLength", f"length {length!r}: the reference panics on any text"
        )
    return [FixedLength(min(length, LONGEST))]
