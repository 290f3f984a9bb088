"""Post-processors: tokenizer.json's `post_processor` section as a special-token template.

Every post-processor that changes ids (BertProcessing, RobertaProcessing, TemplateProcessing,
and Sequences of them with ByteLevel) places fixed special tokens around the sequences and
assigns type ids by position. Rather than re-deriving each processor's rules, tfpipe runs the
reference processor once on marker encodings at build time and reads the template off the
result: which positions hold a sequence, which hold which special id, and every type id.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.padding import Padding
from tfpipe.tokenization.ragged_ops import concat_rows, one_per_row
from tfpipe.tokenization.reference import reference_tokenizer

# The one list of supported post-processor types (a `Sequence` of them is a container). A set,
# not a {type: compiler} registry: every type compiles the same way, read off the reference.
POST_PROCESSORS = frozenset(
    {"BertProcessing", "RobertaProcessing", "TemplateProcessing", "ByteLevel"}
)
FIRST_MARKER, SECOND_MARKER = 4_000_000_001, 4_000_000_002
FIRST_LENGTH, SECOND_LENGTH = 2, 3
MARKERS_PER_SEQUENCE = (FIRST_LENGTH, SECOND_LENGTH)
SECTION = "post_processor"
# Per-token outputs beside the ids (TokenizerLayer's return_special_tokens_mask and
# return_word_ids).
ANNOTATIONS = ("special_tokens_mask", "word_ids", "sequence_ids")


@dataclass(frozen=True)
class TemplateItem:
    """Either a special token (`sequence` None, `token_id` set) or sequence 0/1."""

    type_id: int
    sequence: int | None = None
    token_id: int | None = None


def _reference_encoding(
    component: dict | None, pair: bool, pad: bool = False
) -> tuple[list[int], list[int]] | list[int | None]:
    """The marker encoding's (ids, type ids); with `pad`, its sequence ids padded by one."""
    tokenizer = reference_tokenizer(
        pre_tokenizer={"type": "WhitespaceSplit"},
        post_processor=component,
        model={
            "type": "WordLevel",
            "vocab": {"a": FIRST_MARKER, "b": SECOND_MARKER},
            "unk_token": "a",
        },
    )
    first = " ".join(["a"] * FIRST_LENGTH)
    second = " ".join(["b"] * SECOND_LENGTH) if pair else None
    if pad:
        tokenizer.enable_padding(length=FIRST_LENGTH + SECOND_LENGTH + 8)
        return tokenizer.encode(first, second).sequence_ids
    encoding = tokenizer.encode(first, second)
    return encoding.ids, encoding.type_ids


def _template(ids: list[int], type_ids: list[int], kind: str) -> tuple[TemplateItem, ...]:
    """The template of a marker encoding: each run of one sequence's markers is one item.

    A run of other than that sequence's marker count is the sequence placed twice in a row
    (TemplateProcessing's "$A $A"), which one item would silently place once.
    """
    items: list[TemplateItem] = []
    runs: list[int] = []
    markers = {FIRST_MARKER: 0, SECOND_MARKER: 1}
    for token_id, type_id in zip(ids, type_ids, strict=True):
        sequence = markers.get(token_id)
        if sequence is None:
            items.append(TemplateItem(type_id=type_id, token_id=token_id))
        elif not items or items[-1].sequence != sequence:
            items.append(TemplateItem(type_id=type_id, sequence=sequence))
            runs.append(1)
        elif items[-1].type_id != type_id:
            raise UnsupportedComponentError(SECTION, kind, "mixed type ids within one sequence")
        else:
            runs[-1] += 1
    sequences = [item.sequence for item in items if item.sequence is not None]
    if any(run != MARKERS_PER_SEQUENCE[seq] for seq, run in zip(sequences, runs, strict=True)):
        raise UnsupportedComponentError(SECTION, kind, "a sequence placed twice in a row")
    return tuple(items)


class PostProcessor:
    """The compiled `post_processor` section: templates for single texts and pairs."""

    def __init__(self, component: dict | None) -> None:
        # The sequence id tokenizers reports on padding, single texts and pairs: -1 (None),
        # except where no post-processor marked the sequence ranges of a single text; its
        # Encoding then reports sequence 0 everywhere, padding included.
        self.pad_sequence_id = {
            pair: _none_as(_reference_encoding(component, pair, pad=True)[-1])
            for pair in (False, True)
        }
        if component is None:
            self.single = (TemplateItem(0, sequence=0),)
            self.pair = (TemplateItem(0, sequence=0), TemplateItem(1, sequence=1))
            return
        kind = component.get("type")
        self.single = _template(*_reference_encoding(component, pair=False), kind)
        self.pair = _template(*_reference_encoding(component, pair=True), kind)
        self._check_each_sequence_once(kind)

    def _check_each_sequence_once(self, kind: str) -> None:
        for template, expected in ((self.single, [0]), (self.pair, [0, 1])):
            order = [item.sequence for item in template if item.sequence is not None]
            if sorted(order) != expected:
                raise UnsupportedComponentError(SECTION, kind, f"sequence order {order}")

    def num_special_tokens(self, pair: bool) -> int:
        template = self.pair if pair else self.single
        return sum(item.sequence is None for item in template)

    def __call__(
        self, sequences: list[tf.RaggedTensor]
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Place the sequences ([batch, (ids)] each) into the template → (ids, type ids)."""
        template = self.pair if len(sequences) == 2 else self.single
        batch = sequences[0].nrows(out_type=tf.int64)
        ids, type_ids = [], []
        for item in template:
            if item.sequence is None:
                part = one_per_row(tf.fill([batch], tf.constant(item.token_id, tf.int32)))
            else:
                part = sequences[item.sequence]
            ids.append(part)
            type_ids.append(part.with_values(tf.fill(tf.shape(part.values), item.type_id)))
        return concat_rows(ids), concat_rows(type_ids)

    def padded(
        self,
        sequences: list[tf.RaggedTensor],
        kept: list[tf.Tensor],
        keep_last: bool,
        padding: Padding,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The template filled in and padded: (ids, type ids, attention mask), [batch, width].

        `kept` holds each sequence's per-row length after truncation: its first values, or
        its last with `keep_last` (left truncation). Every output cell names its source in one
        table (the sequences' values, one slot per special token, the pad slot), so
        truncation, the template and padding cost one gather per output instead of ragged
        masking, concatenation and densifying (the bulk of a batch-1 request's ops).
        """
        template = self.pair if len(sequences) == 2 else self.single
        slot, pad_slot, sizes = self._padded_slots(template, sequences, kept, keep_last, padding)
        ids = tf.gather(self._ids_table(template, sequences, padding.pad_id), slot)
        type_ids = tf.gather(self._types_table(template, sizes, padding.pad_type_id), slot)
        return ids, type_ids, tf.cast(slot != pad_slot, tf.int32)

    def _padded_slots(
        self,
        template: tuple[TemplateItem, ...],
        sequences: list[tf.RaggedTensor],
        kept: list[tf.Tensor],
        keep_last: bool,
        padding: Padding,
    ) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """([batch, width] index of every cell's source in the tables, the pad slot, each
        sequence's count of values)."""
        firsts, sizes = [], []
        size = tf.constant(0)
        for sequence, keep in zip(sequences, kept, strict=True):
            first = tf.cast(sequence.row_starts(), tf.int32)
            if keep_last:
                first += tf.cast(sequence.row_lengths(), tf.int32) - keep
            firsts.append(size + first)
            sizes.append(tf.size(sequence.values))
            size += sizes[-1]
        specials = sum(item.sequence is None for item in template)
        pad_slot = size + specials
        total = sum(kept[1:], kept[0]) + specials
        width = padding.width(total)
        position = tf.range(width)[tf.newaxis, :]
        if padding.left:
            position -= (width - total)[:, tf.newaxis]
        ends, offset, special = [], 0, 0
        for item in template:
            if item.sequence is None:
                source = size + special
                special, offset = special + 1, offset + 1
            else:
                start = firsts[item.sequence] - offset
                source = start[:, tf.newaxis] + position
                offset = offset + kept[item.sequence]
            ends.append((offset, source))
        slot = pad_slot
        for end, source in reversed(ends):
            slot = tf.where(position < _column(end), source, slot)
        if padding.left:
            slot = tf.where(position >= 0, slot, pad_slot)
        return slot, pad_slot, sizes

    def _ids_table(self, template, sequences, pad_id: int) -> tf.Tensor:
        specials = [item.token_id for item in template if item.sequence is None]
        return _table([s.values for s in sequences], specials, pad_id)

    def _types_table(self, template, sizes: list[tf.Tensor], pad_type_id: int) -> tf.Tensor:
        specials = [item.type_id for item in template if item.sequence is None]
        types = [tf.fill([n], _type_of_sequence(template, index)) for index, n in enumerate(sizes)]
        return _table(types, specials, pad_type_id)

    def annotated(
        self,
        sequences: list[tf.RaggedTensor],
        columns: list[dict[str, tf.RaggedTensor]],
        kept: list[tf.Tensor],
        keep_last: bool,
        padding: Padding | None,
        names: tuple[str, ...],
    ) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        """The attention mask and the outputs `names` (input_ids, token_type_ids and any of
        ANNOTATIONS) of `padded`, or without `padding` of `__call__`: every output one gather
        from its table by the same slots.

        `columns` holds per sequence its per-token values beside the ids (`word_ids`,
        `offset_start`, `offset_end`), shaped as `sequences`; without padding all are already
        truncated. Special tokens of the template and padding are special (mask 1), of no
        word and no sequence (-1) and at offsets 0, as `tokenizers`' Encoding has them
        (padding's sequence: `pad_sequence_id`).
        """
        template = self.pair if len(sequences) == 2 else self.single
        if padding is None:
            sizes = [tf.size(s.values) for s in sequences]
            slot, pad_id, pad_type_id = self._slots(template, sequences, sizes), 0, 0
        else:
            slot, pad_slot, sizes = self._padded_slots(
                template, sequences, kept, keep_last, padding
            )
            pad_id, pad_type_id = padding.pad_id, padding.pad_type_id
        count = sum(item.sequence is None for item in template)
        tables = {
            "input_ids": lambda: self._ids_table(template, sequences, pad_id),
            "token_type_ids": lambda: self._types_table(template, sizes, pad_type_id),
            "special_tokens_mask": lambda: _table(
                [tf.zeros([n], tf.int32) for n in sizes], [1] * count, 1
            ),
            "word_ids": lambda: _column_table(columns, "word_ids", count, -1),
            "offset_start": lambda: _column_table(columns, "offset_start", count, 0),
            "offset_end": lambda: _column_table(columns, "offset_end", count, 0),
            "sequence_ids": lambda: _table(
                [tf.fill([n], index) for index, n in enumerate(sizes)],
                [-1] * count,
                self.pad_sequence_id[len(sequences) == 2],
            ),
        }
        if padding is None:
            outputs = {"attention_mask": slot.with_values(tf.ones_like(slot.values))}
            take = lambda table: slot.with_values(tf.gather(table, slot.values))  # noqa: E731
        else:
            outputs = {"attention_mask": tf.cast(slot != pad_slot, tf.int32)}
            take = lambda table: tf.gather(table, slot)  # noqa: E731
        for name in names:
            outputs[name] = take(tables[name]())
        return outputs

    def _slots(
        self,
        template: tuple[TemplateItem, ...],
        sequences: list[tf.RaggedTensor],
        sizes: list[tf.Tensor],
    ) -> tf.RaggedTensor:
        """[batch, (tokens)] index of every token's source in the tables, unpadded."""
        batch = sequences[0].nrows(out_type=tf.int64)
        starts = tf.cumsum(sizes, exclusive=True)
        size = tf.add_n(sizes)
        parts, special = [], 0
        for item in template:
            if item.sequence is None:
                part = one_per_row(tf.fill([batch], size + special))
                special += 1
            else:
                sequence = sequences[item.sequence]
                part = sequence.with_values(starts[item.sequence] + tf.range(sizes[item.sequence]))
            parts.append(part)
        return concat_rows(parts)


def _table(per_sequence: list[tf.Tensor], specials: list[int], pad: int) -> tf.Tensor:
    """The sequences' values, then one value per special token of the template, then pad."""
    return tf.concat([*per_sequence, tf.constant(specials + [pad], tf.int32)], 0)


def _column_table(columns: list[dict], name: str, specials: int, fill: int) -> tf.Tensor:
    return _table([c[name].values for c in columns], [fill] * specials, fill)


def _none_as(value: int | None, none: int = -1) -> int:
    return none if value is None else value


def _type_of_sequence(template: tuple[TemplateItem, ...], sequence: int) -> int:
    return next(item.type_id for item in template if item.sequence == sequence)


def _column(value: tf.Tensor | int) -> tf.Tensor | int:
    """A per-row value as a [batch, 1] column (Python ints broadcast as they are)."""
    return value[:, tf.newaxis] if isinstance(value, tf.Tensor) else value
