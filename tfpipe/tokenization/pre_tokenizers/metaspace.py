"""`Metaspace`: spaces rewritten to a replacement character (▁), which pieces get in front.

It rewrites the pieces between two phases of split stages (see PreTokenizer), its own split
(MergedWithNext on the replacement) opening the second. With `prepend_scheme: first` the first
phase also carries which words start at original offset 0 (see anchoring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, SplitStage
from tfpipe.tokenization.ragged_ops import concat_rows

BLANK = 0x20
PREPEND_SCHEMES = ("always", "never", "first")


@dataclass
class Metaspace:
    """`Metaspace`: spaces become the replacement, which is prepended to every piece lacking it
    (`always`), to none (`never`) or only to pieces at original offset 0 (`first`).

    Split (MergedWithNext on the replacement) is the split stage it returns from `stages`.
    For `first` the caller says which pieces start at offset 0: the first piece of each sequence
    unless an added token, a removed character or a pre-tokenizer split precedes it (see
    anchoring for what normalizers do to that offset).
    """

    replacement: int
    scheme: str
    split: bool

    @classmethod
    def from_component(cls, component: dict) -> Metaspace:
        replacement = component.get("replacement", "\u2581")
        if len(replacement) != 1:
            raise UnsupportedComponentError(SECTION, "Metaspace", f"replacement {replacement!r}")
        if "prepend_scheme" in component:
            scheme = component["prepend_scheme"]
        else:
            scheme = "always" if component.get("add_prefix_space", True) else "never"
        if scheme not in PREPEND_SCHEMES:
            raise UnsupportedComponentError(SECTION, "Metaspace", f"prepend_scheme {scheme!r}")
        return cls(ord(replacement), scheme, bool(component.get("split", True)))

    def stages(self) -> list[SplitStage]:
        """Its split, which opens the phase after the rewrite (none with split false)."""
        if not self.split:
            return []
        classes = np.zeros(NUM_CODEPOINTS, np.int32)
        classes[self.replacement] = 1
        return [SplitStage(classes, "MergedWithNext")]

    def apply(self, pieces: tf.RaggedTensor, anchored: tf.Tensor | None = None) -> tf.RaggedTensor:
        """Rewrite the pieces; `anchored` (bool per piece) is required for `first`."""
        values = pieces.values
        replacement = tf.constant(self.replacement, values.dtype)
        pieces = pieces.with_values(tf.where(values == BLANK, replacement, values))
        if self.scheme == "never":
            return pieces
        return prepend_char(pieces, self.replacement, anchored if self.scheme == "first" else None)


def prepend_char(
    pieces: tf.RaggedTensor, char: int, where: tf.Tensor | None = None
) -> tf.RaggedTensor:
    """Prefix every non-empty piece not starting with `char` (and, if given, `where`) with it."""
    nonempty = pieces.row_lengths() > 0
    if where is not None:
        nonempty &= where
    first_index = tf.where(nonempty, pieces.row_starts(), 0)
    padded = tf.concat([pieces.values, tf.constant([char], pieces.values.dtype)], 0)
    first = tf.where(nonempty, tf.gather(padded, first_index), char)
    needs = tf.cast(first != char, pieces.row_splits.dtype)
    prefix = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(needs)], tf.constant(char, pieces.values.dtype)), needs
    )
    return concat_rows([prefix, pieces])


def compile_metaspace(component: dict) -> list[SplitStage]:
    """The split stages; `PreTokenizer` runs the rewrite itself, before them."""
    return Metaspace.from_component(component).stages()
