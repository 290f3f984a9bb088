"""`TokenizerLayer`'s outputs beyond ids, type ids and the attention mask: special-token
masks, word and sequence ids, offsets and overflow windows.

The encoder packs what a token carries besides its id (word index with the id, offsets in a
second tensor, word_index.py and offsets.py); here each becomes a ragged column shaped as the
ids, windowed or truncated with them, and the post-processor gathers every output from its
tables by one set of slots (`PostProcessor.annotated`).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.offsets import OffsetTrimmer, unpack_offsets
from tfpipe.tokenization.overflow import padding_check, stride_check, windows
from tfpipe.tokenization.padding import Padding
from tfpipe.tokenization.processors import PostProcessor
from tfpipe.tokenization.ragged_ops import positions_in_rows, row_ids
from tfpipe.tokenization.truncation import truncate_rows
from tfpipe.tokenization.word_index import unpack

OFFSET_UNITS = ("char", "byte")


@dataclass(frozen=True)
class Extras:
    """Which outputs beyond the usual the layer returns."""

    special_tokens_mask: bool = False
    word_ids: bool = False
    offsets: bool = False
    overflowing: bool = False
    stride: int = 0

    def __bool__(self) -> bool:
        return self.special_tokens_mask or self.word_ids or self.offsets or self.overflowing

    @property
    def words(self) -> bool:
        """Whether the encoder packs word indices (offsets come with them)."""
        return self.word_ids or self.offsets


@dataclass(frozen=True)
class Layout:
    """What the outputs depend on besides the tokens: the layer's settings."""

    post_processor: PostProcessor
    padding: Padding | None
    budget: int | None
    left: bool
    names: tuple[str, ...]
    trimmer: OffsetTrimmer | None


class Sequence:
    """One encoded sequence: ragged ids and per-token columns shaped as them."""

    def __init__(self, ids: tf.RaggedTensor, columns: dict[str, tf.RaggedTensor]) -> None:
        self.ids, self.columns = ids, columns

    @classmethod
    def unpacked(cls, encoded, extras: Extras) -> Sequence:
        """From an encoder's output: ids alone, ids packed with words, or (that, offsets)."""
        offsets = None
        if extras.offsets:
            encoded, offsets = encoded
        if not extras.words:
            return cls(encoded, {})
        ids, words = unpack(encoded)
        columns = {"word_ids": words}
        if offsets is not None:
            start, end = unpack_offsets(offsets.values[:, 0])
            before, after = unpack_offsets(offsets.values[:, 1])
            columns.update(
                {
                    name: ids.with_values(values)
                    for name, values in zip(
                        ("offset_start", "offset_end", "taken_before", "taken_after"),
                        (start, end, before, after),
                        strict=True,
                    )
                }
            )
        return cls(ids, columns)

    def map(self, function) -> Sequence:
        """`function` applied to the ids and every column."""
        return Sequence(
            function(self.ids), {name: function(value) for name, value in self.columns.items()}
        )


def extra_outputs(
    sequences: list[Sequence], kept: list[tf.Tensor], checks: list, extras: Extras, layout: Layout
) -> dict[str, tf.Tensor | tf.RaggedTensor]:
    """Every output the layer returns, with the extras, from the encoded sequences and their
    lengths after truncation (`kept`, and the checks raising HF's truncation errors)."""
    keep_last = layout.left
    sample = None
    if extras.overflowing:
        sequences, kept, checks, sample = _windowed(sequences, kept, checks, extras, layout)
        keep_last = False
    elif layout.padding is None and layout.budget is not None:
        side = "left" if layout.left else "right"
        sequences = [
            s.map(lambda rows, k=k: truncate_rows(rows, k, side))
            for s, k in zip(sequences, kept, strict=True)
        ]
    if extras.offsets and layout.trimmer:
        sequences = [
            _trimmed(s, k, keep_last, layout.trimmer)
            for s, k in zip(sequences, kept, strict=True)
        ]
    with tf.control_dependencies(checks):
        outputs = layout.post_processor.annotated(
            [s.ids for s in sequences],
            [s.columns for s in sequences],
            kept,
            keep_last,
            layout.padding,
            layout.names,
        )
    if extras.offsets:
        start, end = outputs.pop("offset_start"), outputs.pop("offset_end")
        if isinstance(start, tf.RaggedTensor):
            outputs["offset_mapping"] = start.with_values(tf.stack([start.values, end.values], 1))
        else:
            outputs["offset_mapping"] = tf.stack([start, end], axis=-1)
    if sample is not None:
        outputs["overflow_to_sample_mapping"] = sample
    return outputs


def output_names(extras: Extras, token_type_ids: bool) -> tuple[str, ...]:
    """The post-processor tables the outputs gather from, in output order."""
    names = ("input_ids",) + (("token_type_ids",) if token_type_ids else ())
    names += ("special_tokens_mask",) if extras.special_tokens_mask else ()
    names += ("word_ids", "sequence_ids") if extras.word_ids else ()
    names += ("offset_start", "offset_end") if extras.offsets else ()
    return names


def _windowed(sequences, kept, checks, extras: Extras, layout: Layout):
    """Every overflow window as a row (overflow.py): (sequences, lengths, checks, the row
    each window comes from)."""
    ids = [s.ids for s in sequences]
    if layout.budget is None:
        sample = tf.range(tf.cast(ids[0].nrows(), tf.int32))
        return sequences, [tf.cast(s.row_lengths(), tf.int32) for s in ids], checks, sample
    lengths = [tf.cast(s.row_lengths(), tf.int32) for s in ids]
    with tf.control_dependencies([*checks, stride_check(lengths, kept, extras.stride)]):
        spans = windows(ids, kept, extras.stride, layout.left)
    names = list(sequences[0].columns)
    windowed_ids = spans.gather(ids)
    columns = {name: spans.gather([s.columns[name] for s in sequences]) for name in names}
    windowed = [
        Sequence(rows, {name: columns[name][index] for name in names})
        for index, rows in enumerate(windowed_ids)
    ]
    checks = []
    if layout.padding is not None and layout.budget <= 1:
        sizes, main = spans.lengths, spans.main
        checks.append(padding_check(sizes, main, layout.post_processor, layout.padding))
    return windowed, spans.lengths, checks, spans.sample


def _trimmed(
    sequence: Sequence, kept: tf.Tensor, keep_last: bool, trimmer: OffsetTrimmer
) -> Sequence:
    """Offsets trimmed as the ByteLevel/RobertaProcessing post-processors trim them: on each
    truncated sequence, where the first token kept is its first."""
    ids = sequence.ids
    row = row_ids(ids)
    first = 0
    if keep_last:
        first = tf.gather(tf.cast(ids.row_lengths(), tf.int32) - kept, row)
    is_first = tf.equal(positions_in_rows(ids, row), first)
    start, end = trimmer(
        ids.values,
        sequence.columns["offset_start"].values,
        sequence.columns["offset_end"].values,
        is_first,
        (sequence.columns["taken_before"].values, sequence.columns["taken_after"].values),
    )
    columns = dict(sequence.columns)
    columns.update(offset_start=ids.with_values(start), offset_end=ids.with_values(end))
    return Sequence(ids, columns)
