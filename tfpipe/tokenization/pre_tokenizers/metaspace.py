"""`Metaspace`: spaces rewritten to a replacement character (▁), which pieces get in front.

A rewrite step (see PreTokenizer) followed by its own split (MergedWithNext on the
replacement). With `prepend_scheme: first` it reads which code points sit at original offset 0
(see anchoring), which the steps before it carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.pre_tokenizers.split_stages import SECTION, Rewrite, SplitStage, Stage
from tfpipe.tokenization.ragged_ops import bincount, select

BLANK = 0x20
PREPEND_SCHEMES = ("always", "never", "first")


@dataclass
class Metaspace(Rewrite):
    """`Metaspace`: spaces become the replacement, which is prepended to every piece lacking it
    (`always`), to none (`never`) or only to pieces at original offset 0 (`first`).

    Split (MergedWithNext on the replacement) is the split stage it returns from `stages`.
    For `first` the caller flags the code points at offset 0: the first one of each sequence
    unless an added token, a removed character or a pre-tokenizer split precedes it, and what
    earlier rewrites align to it (see anchoring for what normalizers do to that offset).
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

    def split_commutes(self, stage: Stage, earlier: list[Stage]) -> bool:
        """Its own split commutes with it once no space is left (WhitespaceSplit before it):
        the rewrite then only prepends the replacement to a piece lacking it, which starts a
        piece either way, and the pieces the split cuts off already start with it."""
        return (
            self.split
            and isinstance(stage, SplitStage)
            and stage.behaviour == "MergedWithNext"
            and np.flatnonzero(stage.classes).tolist() == [self.replacement]
            and any(isinstance(s, SplitStage) and s.removes_char(BLANK) for s in earlier)
        )

    @property
    def reads_anchor(self) -> bool:
        return self.scheme == "first"

    def rewrite(
        self, pieces: tf.RaggedTensor, flags: tf.Tensor | None, track: bool = False
    ) -> tuple[tf.RaggedTensor, tf.Tensor | None]:
        """Rewrite the pieces; `flags` (offset 0, per code point) are required for `first`."""
        values = pieces.values
        replacement = tf.constant(self.replacement, values.dtype)
        pieces = pieces.with_values(tf.where(values == BLANK, replacement, values))
        if self.scheme == "never":
            return pieces, None
        return prepend_char(
            pieces, self.replacement, flags if self.reads_anchor else None, track=track
        )


def prepend_char(
    pieces: tf.RaggedTensor, char: int, anchored: tf.Tensor | None = None, track: bool = False
) -> tuple[tf.RaggedTensor, tf.Tensor | None]:
    """Prefix every non-empty piece not starting with `char` with it; given `anchored` flags
    (per code point), only pieces whose first code point is flagged. `tokenizers` aligns the
    prefix to the code point it precedes: with `track`, that is where it comes from.

    Flat: each code point moves right by the prefixes up to its piece, and every prefix
    takes its piece's new start (one stitch, no ragged concatenation).
    """
    values = pieces.values
    splits = pieces.row_splits
    starts = splits[:-1]
    nonempty = splits[1:] > starts
    first_index = tf.where(nonempty, starts, 0)
    padded = tf.concat([values, tf.constant([char], values.dtype)], 0)
    first = tf.where(nonempty, tf.gather(padded, first_index), char)
    needs = first != char
    if anchored is not None:
        needs &= tf.gather(tf.concat([anchored, [False]], 0), first_index)
    count = tf.size(values)
    prefixed_starts = tf.cast(select(first_index, needs), tf.int32)
    moved = tf.range(count) + tf.cumsum(bincount(prefixed_starts, count))
    added = tf.cumsum(tf.cast(needs, splits.dtype))
    new_splits = splits + tf.concat([tf.zeros([1], splits.dtype), added], 0)
    prefix_at = tf.cast(select(new_splits[:-1], needs), tf.int32)
    prefixes = tf.fill(tf.shape(prefix_at), tf.constant(char, values.dtype))
    prepended = tf.RaggedTensor.from_row_splits(
        tf.dynamic_stitch([moved, prefix_at], [values, prefixes]), new_splits, validate=False
    )
    if not track:
        return prepended, None
    sources = tf.dynamic_stitch([moved, prefix_at], [tf.range(count), prefixed_starts])
    return prepended, sources


def compile_metaspace(component: dict) -> list[Rewrite | SplitStage]:
    """The rewrite, then its split stage."""
    metaspace = Metaspace.from_component(component)
    return [metaspace, *metaspace.stages()]
