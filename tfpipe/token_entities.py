"""`TokenEntities`: per-token logits to the entities transformers' token-classification
pipeline returns, computed in the graph.

It follows `TokenClassificationPipeline.postprocess` (transformers 4.54.1) step by step, for
every window of every text at once: softmax, tokens the special-tokens mask keeps, words
(`aggregate_words`, strategies first/average/max), B-/I- groups (`group_entities`),
`ignore_labels`, then for texts cut into several windows `aggregate_overlapping_entities`.
Everything that depends only on the tokenizer and the labels is a table built here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from tokenizers import Tokenizer

from tfpipe.tokenization.decoders import Decoder
from tfpipe.tokenization.detokenizer_layer import token_table
from tfpipe.tokenization.pipeline import decode_replacing_errors
from tfpipe.tokenization.ragged_ops import (
    bincount,
    expand,
    previous,
    repeat_range,
    rows_from_ids,
)
from tfpipe.unconverted import unconverted

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = frozenset({"first", "average", "max"})
SPACE = ord(" ")
# What an entity carries until it is output (label: an index into the label names).
ENTITY_FIELDS = ("window", "start", "end", "label", "score", "word")


def label_tag(label: str) -> tuple[bool, str]:
    """transformers' `get_tag`: (is a B- label, its tag); a label without B-/I- is its own
    tag and continues like an I- label."""
    if label.startswith(("B-", "I-")):
        return label.startswith("B-"), label[2:]
    return False, label


def group_name(label: str) -> str:
    """The `entity_group` transformers names after a group's first label."""
    return label.split("-", 1)[-1]


def is_word_aware(tokenizer_json: str) -> bool:
    """Whether transformers finds subwords by token length (the model has a
    continuing_subword_prefix, as WordPiece) rather than by spaces around the token; asked
    of the tokenizers model, as transformers asks (a file may leave WordPiece's ## implicit)."""
    model = Tokenizer.from_str(tokenizer_json).model
    return bool(getattr(model, "continuing_subword_prefix", None))


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class TokenEntities(tf_keras.layers.Layer):
    """Tokenizer outputs (with offsets and special-tokens mask), logits and the texts to
    entities padded per batch: ``entity``, ``score``, ``word``, ``start``, ``end`` and
    ``num_entities``, as transformers' token-classification pipeline lists them."""

    def __init__(
        self,
        tokenizer_json: str,
        labels: Sequence[str],
        aggregation_strategy: str = "none",
        ignore_labels: Sequence[str] = ("O",),
        unk_token_id: int = -1,
        merge_windows: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if aggregation_strategy not in AGGREGATION_STRATEGIES:
            raise ValueError(
                f"aggregation_strategy must be one of {', '.join(AGGREGATION_STRATEGIES)}, "
                f"got {aggregation_strategy!r}"
            )
        self.tokenizer_json = tokenizer_json
        self.labels = [str(label) for label in labels]
        self.aggregation_strategy = aggregation_strategy
        self.ignore_labels = [str(label) for label in ignore_labels]
        self.unk_token_id = int(unk_token_id)
        self.merge_windows = bool(merge_windows)
        self.word_aware = is_word_aware(tokenizer_json)
        self.decoder = Decoder(json.loads(tokenizer_json).get("decoder"))
        strings, _, _ = token_table(tokenizer_json)
        self._token_strings = strings
        self._token_lengths = np.array([len(s.decode()) for s in strings], np.int32)
        self._label_tables()

    def _label_tables(self) -> None:
        """Per label id: its tag (an index), whether it is a B- label, its group name and
        whether the entity it heads is dropped."""
        tags = [label_tag(label) for label in self.labels]
        tag_names = sorted({tag for _, tag in tags})
        self._tag_ids = np.array([tag_names.index(tag) for _, tag in tags], np.int32)
        self._is_begin = np.array([begin for begin, _ in tags], bool)
        grouped = self.aggregation_strategy != "none"
        names = [group_name(label) if grouped else label for label in self.labels]
        self._names = np.array([name.encode() for name in names], object)
        self._ignored = np.array([name in self.ignore_labels for name in names], bool)

    @unconverted
    def call(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        text = inputs["text"]
        windows = tf.shape(inputs["input_ids"])[0]
        sample = inputs.get("overflow_to_sample_mapping")
        sample = tf.range(windows) if sample is None else tf.cast(sample, tf.int32)
        tokens = self._tokens(inputs, text, sample)
        if self.aggregation_strategy == "none":
            entities = {name: tokens[name] for name in ENTITY_FIELDS}
        else:
            units = self._words(tokens) if self.aggregation_strategy in WORD_STRATEGIES else tokens
            entities = self._groups(units)
        entities = _select(entities, ~tf.gather(tf.constant(self._ignored), entities["label"]))
        entities["text"] = tf.gather(sample, entities["window"])
        count = tf.ones_like(entities["start"])
        if self.merge_windows:
            entities, count = _merged_overlaps(entities, tf.shape(text)[0], sample)
        return self._padded(entities, count, tf.shape(text)[0])

    def _tokens(self, inputs: dict, text: tf.Tensor, sample: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every token the pipeline keeps (not special, not padding), as `gather_pre_entities`
        makes them: window, id, offsets, scores, label, word string and is_subword."""
        keep = tf.logical_and(
            tf.not_equal(inputs["attention_mask"], 0),
            tf.equal(inputs["special_tokens_mask"], 0),
        )
        where = tf.where(keep)
        ids = tf.cast(tf.gather_nd(inputs["input_ids"], where), tf.int32)
        offsets = tf.cast(tf.gather_nd(inputs["offset_mapping"], where), tf.int32)
        start, end = offsets[:, 0], offsets[:, 1]
        logits = tf.cast(tf.gather_nd(inputs["logits"], where), tf.float32)
        scores = tf.nn.softmax(logits, axis=-1)
        window = tf.cast(where[:, 0], tf.int32)
        cps = decode_replacing_errors(text)
        text_index = tf.gather(sample, window)
        first_cp = tf.gather(tf.cast(cps.row_starts(), tf.int32), text_index)
        is_unk = tf.equal(ids, self.unk_token_id)
        word = tf.gather(tf.constant(self._token_strings), ids)
        word = _replaced(word, is_unk, _text_slices(cps.values, first_cp, start, end, is_unk))
        if self.word_aware:
            is_subword = tf.not_equal(tf.gather(tf.constant(self._token_lengths), ids), end - start)
        else:
            length = tf.gather(tf.cast(cps.row_lengths(), tf.int32), text_index)
            before = _char_at(cps.values, first_cp, length, start - 1)
            at = _char_at(cps.values, first_cp, length, start)
            is_subword = (start > 0) & (before != SPACE) & (at != SPACE)
        return {
            "window": window,
            "start": start,
            "end": end,
            "scores": scores,
            "label": tf.argmax(scores, axis=-1, output_type=tf.int32),
            "score": tf.reduce_max(scores, axis=-1),
            "word": word,
            "is_subword": is_subword & ~is_unk,
        }

    def _words(self, tokens: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """`aggregate_words`: a word starts at each token that is not a subword (and at each
        window's first token), takes the first/max/average token's label and score."""
        window = tokens["window"]
        starts = (window != previous(window, -1)) | ~tokens["is_subword"]
        first, last, unit = _runs(starts)
        if self.aggregation_strategy == "first":
            label, score = tf.gather(tokens["label"], first), tf.gather(tokens["score"], first)
        elif self.aggregation_strategy == "max":
            best = tf.math.segment_max(tokens["score"], unit)
            is_best = tf.equal(tokens["score"], tf.gather(best, unit))
            index = tf.range(tf.size(unit))
            chosen = tf.math.segment_min(tf.where(is_best, index, tf.size(unit)), unit)
            label, score = tf.gather(tokens["label"], chosen), tf.gather(tokens["score"], chosen)
        else:
            average = tf.math.segment_mean(tokens["scores"], unit)
            label = tf.argmax(average, axis=-1, output_type=tf.int32)
            score = tf.reduce_max(average, axis=-1)
        return {
            "window": tf.gather(window, first),
            "start": tf.gather(tokens["start"], first),
            "end": tf.gather(tokens["end"], last),
            "label": label,
            "score": score,
            "word": self._joined(tokens["word"], first),
        }

    def _groups(self, units: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """`group_entities`: a group continues while the tag stays the same and no B- label
        comes; it is named after its first label and scores the mean of its scores."""
        window, label = units["window"], units["label"]
        tag = tf.gather(tf.constant(self._tag_ids), label)
        starts = (
            (window != previous(window, -1))
            | (tag != previous(tag, -1))
            | tf.gather(tf.constant(self._is_begin), label)
        )
        first, last, group = _runs(starts)
        return {
            "window": tf.gather(window, first),
            "start": tf.gather(units["start"], first),
            "end": tf.gather(units["end"], last),
            "label": tf.gather(label, first),
            "score": tf.math.segment_mean(units["score"], group),
            "word": self._joined(units["word"], first),
        }

    def _joined(self, words: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
        """`convert_tokens_to_string` of each run of `words` starting at `first`."""
        splits = tf.concat([first, tf.shape(words)[:1]], 0)
        rows = tf.RaggedTensor.from_row_splits(words, tf.cast(splits, tf.int64), validate=False)
        return self.decoder(rows)

    def _padded(
        self, entities: dict[str, tf.Tensor], count: tf.Tensor, batch: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """Each entity `count` times, in rows per text padded with "" and 0."""
        source = repeat_range(count)
        text = tf.gather(entities["text"], source)
        values = {
            "entity": tf.gather(tf.constant(self._names), entities["label"]),
            "score": entities["score"],
            "word": entities["word"],
            "start": entities["start"],
            "end": entities["end"],
        }
        padded = {
            name: rows_from_ids(tf.gather(value, source), text, batch).to_tensor(
                "" if value.dtype == tf.string else 0
            )
            for name, value in values.items()
        }
        padded["num_entities"] = bincount(text, batch)
        return padded

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "tokenizer_json": self.tokenizer_json,
            "labels": list(self.labels),
            "aggregation_strategy": self.aggregation_strategy,
            "ignore_labels": list(self.ignore_labels),
            "unk_token_id": self.unk_token_id,
            "merge_windows": self.merge_windows,
        }


def _runs(starts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """For runs of consecutive items, each beginning where `starts` holds (it holds at the
    first item): each run's first and last item, and each item's run."""
    first = tf.cast(tf.reshape(tf.where(starts), [-1]), tf.int32)
    last = tf.concat([first, tf.shape(starts)], 0)[1:] - 1
    run = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    return first, last, run


def _select(items: dict[str, tf.Tensor], keep: tf.Tensor) -> dict[str, tf.Tensor]:
    index = tf.reshape(tf.where(keep), [-1])
    return {name: tf.gather(value, index) for name, value in items.items()}


def _char_at(
    values: tf.Tensor, first_cp: tf.Tensor, length: tf.Tensor, position: tf.Tensor
) -> tf.Tensor:
    """The code point at `position` of each token's text (its code points start at
    `first_cp` of `values` and number `length`), -1 outside the text."""
    inside = (position >= 0) & (position < length)
    padded = tf.concat([values, [-1]], 0)
    return tf.gather(padded, tf.where(inside, first_cp + position, tf.size(values)))


def _text_slices(
    values: tf.Tensor, first_cp: tf.Tensor, start: tf.Tensor, end: tf.Tensor, chosen: tf.Tensor
) -> tf.Tensor:
    """The text between `start` and `end` of each `chosen` token, as `sentence[start:end]`."""
    index = tf.reshape(tf.where(chosen), [-1])
    begin = tf.gather(first_cp + start, index)
    length = tf.maximum(tf.gather(end - start, index), 0)
    source, within = expand(length)
    chars = tf.gather(values, tf.gather(begin, source) + within)
    rows = tf.RaggedTensor.from_row_lengths(chars, tf.cast(length, tf.int64), validate=False)
    return tf.strings.unicode_encode(rows, "UTF-8")


def _replaced(values: tf.Tensor, chosen: tf.Tensor, replacements: tf.Tensor) -> tf.Tensor:
    """`values` with the `chosen` ones replaced, in order, by `replacements`."""
    at = tf.cumsum(tf.cast(chosen, tf.int32)) - 1
    padded = tf.concat([replacements, [""]], 0)
    return tf.where(chosen, tf.gather(padded, tf.maximum(at, 0)), values)


def _merged_overlaps(
    entities: dict[str, tf.Tensor], batch: tf.Tensor, sample: tf.Tensor
) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """`aggregate_overlapping_entities` for each text cut into several windows: its
    entities sorted by start (stably), then swept keeping, of each run of entities starting
    inside the kept one, the longest (the higher score on a tie). Returns the entities in
    output order and how often each is output (transformers outputs the first entity
    twice when it is empty, and drops the others a sweep replaces)."""
    windows_per_text = bincount(sample, batch)
    several = tf.gather(windows_per_text, entities["text"]) > 1
    by_start = tf.argsort(tf.where(several, entities["start"], 0), stable=True)
    order = tf.gather(by_start, tf.argsort(tf.gather(entities["text"], by_start), stable=True))
    entities = {name: tf.gather(value, order) for name, value in entities.items()}
    several = tf.gather(several, order)
    sizes = bincount(entities["text"], batch)
    first = tf.cumsum(sizes, exclusive=True)
    count = _sweep(entities, first, tf.where(windows_per_text > 1, sizes, 0))
    return entities, tf.where(several, count, 1)


def _sweep(entities: dict[str, tf.Tensor], first: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
    """How often the sweep outputs each entity, over all texts at once (one step per
    entity of the text with the most)."""
    start, end, score = entities["start"], entities["end"], entities["score"]
    total = tf.size(start)
    last = tf.maximum(total - 1, 0)

    def at(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(values, tf.minimum(index, last))

    def output(count: tf.Tensor, index: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
        # Texts not outputting add to an extra slot, cut off: ids must be in range.
        slot = tf.where(where, tf.minimum(index, last), total)
        return count + tf.math.unsorted_segment_sum(tf.ones_like(slot), slot, total + 1)[:total]

    def step(i, kept, count):
        active = i < sizes
        current = first + i
        kept_start, kept_end = at(start, kept), at(end, kept)
        new_start, new_end = at(start, current), at(end, current)
        overlaps = (kept_start <= new_start) & (new_start < kept_end)
        kept_length, new_length = kept_end - kept_start, new_end - new_start
        better = (new_length > kept_length) | (
            (new_length == kept_length) & (at(score, current) > at(score, kept))
        )
        count = output(count, kept, active & ~overlaps)
        kept = tf.where(active & (better | ~overlaps), current, kept)
        return i + 1, kept, count

    steps = tf.reduce_max(tf.concat([sizes, [0]], 0))
    _, kept, count = tf.while_loop(
        lambda i, kept, count: i < steps,
        step,
        (tf.constant(0), first, tf.zeros([total], tf.int32)),
    )
    return output(count, kept, sizes > 0)
