"""Packed batches (tfpipe.packing, tfpipe.packed_models): rows side by side in shared rows, with
the whole batch's results."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import classifier_checkpoint
from samples import slow_beyond
from task_checkpoints import task_checkpoint

from tfpipe.packed_models import supports_packing
from tfpipe.packing import first_fit_decreasing, pack
from tfpipe.transformer import TransformerLayer

LENGTHS = [5, 1, 128, 40, 3, 3, 90, 7, 1, 64, 12, 2]
PER_TOKEN_TASKS = ["feature-extraction", "token-classification", "question-answering"]
# Each packing family (tfpipe.packed_models) with a tiny checkpoint: BERT, RoBERTa (position
# ids counted from the padding index), ALBERT (its own encoder and pooler), ELECTRA (narrow
# embeddings projected), DistilBERT (its attention computed by tfpipe).
FAMILIES = ["bert", "roberta", "albert", "electra", "distilbert"]
# fill-mask through TransformerLayer itself (the fill-mask pipeline's layer runs unpacked).
TASKS = ["text-classification", *PER_TOKEN_TASKS, "fill-mask"]
FAMILY_TASKS = slow_beyond(
    [(family, task) for family in FAMILIES for task in TASKS],
    [("bert", task) for task in TASKS]
    + [(family, "text-classification") for family in ("roberta", "electra", "distilbert")],
)


def checkpoint(task: str, family: str = "bert"):
    """A tiny ``family`` checkpoint with ``task``'s head (embeddings: BERT's from the
    classifier, the others' from their token classifier)."""
    if family == "bert" and task in ("text-classification", "feature-extraction"):
        return classifier_checkpoint()
    if task == "feature-extraction":
        return task_checkpoint(family, "token-classification")
    return task_checkpoint(family, task)


def right_padded(lengths: list[int], width: int | None = None) -> tf.Tensor:
    width = width or max(lengths)
    return tf.constant([[1] * n + [0] * (width - n) for n in lengths], tf.int32)


def placed(lengths: list[int], capacity: int) -> list[tuple[int, int]]:
    slot, offset = first_fit_decreasing(tf.constant(lengths), tf.constant(capacity))
    return list(zip(slot.numpy().tolist(), offset.numpy().tolist(), strict=True))


def test_first_fit_decreasing_places_longest_rows_first_without_overlap_or_overflow():
    spans = placed(LENGTHS, 128)
    by_slot: dict[int, list[tuple[int, int]]] = {}
    for (slot, offset), length in zip(spans, LENGTHS, strict=True):
        by_slot.setdefault(slot, []).append((offset, offset + length))
    for intervals in by_slot.values():
        intervals.sort()
        assert intervals[-1][1] <= 128
        pairs = zip(intervals, intervals[1:], strict=False)
        assert all(end <= start for (_, end), (start, _) in pairs)
    assert spans[LENGTHS.index(128)] == (0, 0)
    # 356 tokens in rows of 128: three rows, the fewest that hold them.
    assert len(by_slot) == 3


def test_each_row_of_a_full_width_batch_gets_a_packed_row_of_its_own():
    assert sorted(slot for slot, _ in placed([8, 8, 8], 8)) == [0, 1, 2]


@pytest.mark.parametrize(
    "mask",
    [
        [[1, 1, 1]],
        [[0, 1, 1], [1, 1, 1]],
        [[1, 1, 0], [0, 0, 0]],
    ],
    ids=["one row", "left padding", "a row without tokens"],
)
def test_rows_keep_their_layout_unless_the_batch_is_right_padded_with_tokens_in_every_row(mask):
    mask = tf.constant(mask)
    _, where = pack({"input_ids": mask, "attention_mask": mask})
    rows = len(mask)
    assert where.slot.numpy().tolist() == list(range(rows))
    assert where.offset.numpy().tolist() == [0] * rows
    assert where.computed.numpy().all()


def test_packed_features_hold_each_token_at_its_row_offset_with_its_own_position():
    lengths = [3, 1, 2]
    mask = right_padded(lengths)
    ids = tf.constant([[11, 12, 13], [21, 0, 0], [31, 32, 0]])
    positions = tf.constant([[5, 6, 7], [5, 1, 1], [5, 6, 1]])
    packed, where = pack({"input_ids": ids, "attention_mask": mask, "position_ids": positions})
    assert int(where.count) == 2
    for row, length in enumerate(lengths):
        slot, offset = int(where.slot[row]), int(where.offset[row])
        columns = slice(offset, offset + length)
        expected = ids[row, :length].numpy().tolist()
        assert packed["input_ids"][slot, columns].numpy().tolist() == expected
        assert packed["position_ids"][slot, columns].numpy().tolist() == list(range(5, 5 + length))
        assert (packed["row_ids"][slot, columns].numpy() == row + 1).all()


def batch_features(path, texts: list[str]) -> dict[str, tf.Tensor]:
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(str(path))(texts, padding=True, return_tensors="np")
    names = ("input_ids", "attention_mask", "token_type_ids")
    return {name: tf.constant(encoded[name].astype(np.int32)) for name in names if name in encoded}


# A padding token inside a text: RoBERTa's position ids skip it.
MIXED = ["short", "a much longer text " * 12, "medium <pad> text here", "x", "two words"]


@pytest.mark.parametrize(("family", "task"), FAMILY_TASKS)
def test_packed_outputs_match_the_whole_batch_on_real_tokens(family, task):
    path = checkpoint(task, family)
    packed = TransformerLayer.from_pretrained(path, task, max_chunk_tokens=64)
    whole = TransformerLayer.from_pretrained(path, task, max_chunk_tokens=None)
    assert supports_packing(packed.hf_model)
    features = batch_features(path, MIXED)
    assert int(pack(features)[1].count) < len(MIXED)
    got, expected = packed(features).numpy(), whole(features).numpy()
    if not packed.per_token:
        np.testing.assert_allclose(got, expected, atol=1e-6)
        return
    real = features["attention_mask"].numpy() > 0
    np.testing.assert_allclose(got[real], expected[real], atol=1e-5)
    assert (got[~real] == 0).all()


@pytest.mark.parametrize("family", slow_beyond(FAMILIES, ["roberta"]))
def test_packed_layer_runs_a_left_padded_batch_as_the_whole_batch(family):
    path = checkpoint("feature-extraction", family)
    packed = TransformerLayer.from_pretrained(path, "feature-extraction")
    whole = TransformerLayer.from_pretrained(path, "feature-extraction", max_chunk_tokens=None)
    features = batch_features(path, MIXED)
    # Left padding: each row's tokens moved to its end.
    lengths = features["attention_mask"].numpy().sum(axis=1)
    width = features["attention_mask"].shape[1]

    def left_padded(value: tf.Tensor) -> tf.Tensor:
        rows = zip(value.numpy(), lengths, strict=True)
        return tf.constant(np.stack([np.roll(row, width - n) for row, n in rows]))

    flipped = {name: left_padded(value) for name, value in features.items()}
    np.testing.assert_allclose(packed(flipped).numpy(), whole(flipped).numpy(), atol=1e-5)


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_packed_pipelines_match_the_whole_batch_on_batches_of_32_texts(task, generated_texts):
    from model_fixtures import assert_same_outputs, run
    from samples import sample

    from tfpipe.pipelines import pipeline

    whole = pipeline(task, classifier_checkpoint(), max_chunk_tokens=None)
    packed = pipeline(task, classifier_checkpoint())
    packed.set_weights(whole.get_weights())
    batches = [generated_texts[i : i + 32] for i in range(0, len(generated_texts), 32)]
    for texts in sample(batches, 4):
        expected, got = run(whole, texts), run(packed, texts)
        assert_same_outputs(got, expected)
