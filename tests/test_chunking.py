"""The model on length-sorted chunks (tfpipe.chunking): the whole batch's results, in order."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import CLASSIFIER_LABELS, assert_same_outputs, classifier_checkpoint, run

from tfpipe.chunking import DEFAULT_MAX_CHUNK_TOKENS, run_in_chunks
from tfpipe.cli import build_parser
from tfpipe.cli_export import pipeline_options
from tfpipe.pipelines import pipeline

MIXED_LENGTHS = ["short", "a much longer text " * 20, "", "medium length text", "x " * 200]
WHOLE_BATCH = {"max_chunk_tokens": None}
# Row caps, token budgets (small enough to split these texts), both, and the default.
CHUNKINGS = [
    {"micro_batch_size": 1, "max_chunk_tokens": None},
    {"micro_batch_size": 2, "max_chunk_tokens": None},
    {"max_chunk_tokens": 16},
    {"max_chunk_tokens": 300, "micro_batch_size": 2},
    {},
]


def masks(lengths: list[int], width: int) -> tf.Tensor:
    return tf.constant([[1] * n + [0] * (width - n) for n in lengths], tf.int32)


def recorded_chunks(lengths: list[int], **limits) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Run eagerly (tf.while_loop is a Python loop then): each chunk's shape, and the
    outputs, where a row's output is its length and its first id."""
    width = max(lengths)
    ids = tf.constant([[row] * width for row in range(len(lengths))], tf.int32)
    shapes = []

    def fake_model(chunk):
        shapes.append(tuple(chunk["input_ids"].shape))
        length = tf.reduce_sum(chunk["attention_mask"], axis=1)
        return tf.cast(tf.stack([length, chunk["input_ids"][:, 0]], axis=1), tf.float32)

    features = {"input_ids": ids, "attention_mask": masks(lengths, width)}
    output = run_in_chunks(
        fake_model, features, per_token=False, element_shape=[-1, 2], dtype=tf.float32, **limits
    )
    return shapes, output.numpy()


LENGTHS = [5, 1, 128, 40, 3, 3, 90, 7, 1, 64, 12, 2]


def test_chunks_fill_the_token_budget_from_the_shortest_rows():
    shapes, _ = recorded_chunks(LENGTHS, max_rows=None, max_tokens=64)
    assert shapes == [(7, 7), (1, 12), (1, 40), (1, 64), (1, 90), (1, 128)]


def test_a_row_longer_than_the_budget_runs_alone_and_the_row_cap_applies():
    shapes, _ = recorded_chunks(LENGTHS, max_rows=4, max_tokens=200)
    assert shapes == [(4, 3), (4, 12), (2, 64), (1, 90), (1, 128)]
    assert recorded_chunks([300, 300], max_rows=None, max_tokens=16)[0] == [(1, 300)] * 2


def test_a_batch_within_the_budget_is_one_chunk():
    assert recorded_chunks([13], max_rows=None, max_tokens=DEFAULT_MAX_CHUNK_TOKENS)[0] == [
        (1, 13)
    ]


def test_chunked_outputs_come_back_in_input_order():
    _, output = recorded_chunks(LENGTHS, max_rows=None, max_tokens=64)
    np.testing.assert_array_equal(output, np.stack([LENGTHS, range(len(LENGTHS))], axis=1))


def test_every_feature_is_cut_with_its_rows_and_keeps_its_dtype():
    """Features of two dtypes (stacked per dtype to be cut together): each chunk holds its
    own rows' values, and per-token outputs come back padded with zeros past each row."""
    lengths, width = [3, 1, 2], 3
    ids = tf.constant([[10 * row + column for column in range(width)] for row in range(3)])
    features = {
        "input_ids": tf.cast(ids, tf.int64),
        "attention_mask": masks(lengths, width),
        "token_type_ids": ids + 100,
    }
    dtypes = set()

    def fake_model(chunk):
        dtypes.update((name, value.dtype) for name, value in chunk.items())
        values = [tf.cast(chunk[name], tf.float32) for name in sorted(chunk)]
        return tf.stack(values, axis=-1)

    output = run_in_chunks(
        fake_model, features, max_rows=1, max_tokens=None, per_token=True,
        element_shape=[-1, -1, 3], dtype=tf.float32,
    )
    assert dtypes == {(name, value.dtype) for name, value in features.items()}
    real = masks(lengths, width).numpy()[:, :, None]
    expected = np.stack([features[name].numpy() for name in sorted(features)], axis=-1)
    np.testing.assert_array_equal(output.numpy(), expected * real)


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=lambda limits: str(limits) or "default")
def test_chunked_pipeline_matches_the_whole_batch_in_input_order(task, chunking):
    whole = pipeline(task, classifier_checkpoint(), **WHOLE_BATCH)
    chunked = pipeline(task, classifier_checkpoint(), **chunking)
    chunked.set_weights(whole.get_weights())
    for texts in (MIXED_LENGTHS, MIXED_LENGTHS[::-1], MIXED_LENGTHS[:1]):
        expected, got = run(whole, texts), run(chunked, texts)
        assert_same_outputs(got, expected)


@pytest.mark.parametrize("chunking", [{}, {"micro_batch_size": 2}], ids=["default", "rows"])
def test_chunked_pipeline_returns_empty_outputs_for_an_empty_batch(chunking):
    model = pipeline("text-classification", classifier_checkpoint(), **chunking)
    outputs = model({"text": tf.constant([], tf.string)})
    assert outputs["probabilities"].shape == (0, len(CLASSIFIER_LABELS))
    assert outputs["label"].shape == (0,)


@pytest.mark.parametrize("name", ["micro_batch_size", "max_chunk_tokens"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "4"])
def test_chunking_limits_must_be_positive_integers(name, value):
    with pytest.raises(ValueError, match=name):
        pipeline("text-classification", classifier_checkpoint(), **{name: value})


def test_default_pipeline_chunks_by_tokens_and_saves_its_limits():
    transformer = pipeline("text-classification", classifier_checkpoint()).get_layer(
        "transformer"
    )
    config = transformer.get_config()
    assert config["max_chunk_tokens"] == DEFAULT_MAX_CHUNK_TOKENS
    assert config["micro_batch_size"] is None


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {}),
        (["--max-chunk-tokens", "off"], {"max_chunk_tokens": None}),
        (["--max-chunk-tokens", "512", "--micro-batch-size", "4"],
         {"max_chunk_tokens": 512, "micro_batch_size": 4}),
    ],
)
def test_export_command_passes_the_chunking_limits(flags, expected):
    command = ["export", "--task", "text-classification", "--model", "m", "--output", "o"]
    assert pipeline_options(build_parser().parse_args(command + flags)) == expected


def test_export_command_refuses_a_chunking_limit_that_is_not_a_positive_integer(capsys):
    command = ["export", "--task", "text-classification", "--model", "m", "--output", "o"]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--max-chunk-tokens", "0"])
    assert "--max-chunk-tokens" in capsys.readouterr().err


def test_chunked_pipeline_exports_and_serves_like_in_memory(tmp_path):
    from tfpipe.export import export

    model = pipeline("text-classification", classifier_checkpoint(), max_chunk_tokens=16)
    exported = export(
        model, tmp_path / "saved_models" / "chunked" / "1", warmup_texts=MIXED_LENGTHS
    )
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    got = served(text=tf.constant(MIXED_LENGTHS))["probabilities"].numpy()
    np.testing.assert_allclose(got, run(model, MIXED_LENGTHS)["probabilities"], atol=1e-6)
