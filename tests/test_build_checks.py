"""Build-time refusals of models that would answer wrongly in serving: weights the checkpoint
lacks (a random head on a bare encoder) and a max_length over the model's positions."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, run, save_tiny_checkpoint

from tfpipe.cli import build_parser, main
from tfpipe.cli_export import pipeline_options
from tfpipe.pipelines import PipelineError, pipeline
from tfpipe.transformer import ModelLoadError, TransformerLayer

# The RoBERTa layout: 514 rows of positions, the first two (padding_idx + 1) never used.
ROBERTA_POSITION_ROWS = 514


@functools.cache
def bert_encoder():
    """A bare BERT encoder (TFBertModel weights, no classification head), 512 positions."""
    return save_tiny_checkpoint("bert-encoder", "TFBertModel")


@functools.cache
def short_bert_encoder():
    """A bare BERT encoder with 128 positions, below its tokenizer's model_max_length (512)."""
    return save_tiny_checkpoint("bert-encoder-128", "TFBertModel", max_position_embeddings=128)


@functools.cache
def roberta_encoder():
    return save_tiny_checkpoint(
        "roberta-encoder", "TFRobertaModel", max_position_embeddings=ROBERTA_POSITION_ROWS
    )


def transformers_missing_weights(path) -> list[str]:
    """What transformers itself reports as newly initialised for a classifier on ``path``."""
    from transformers import TFAutoModelForSequenceClassification

    _, info = TFAutoModelForSequenceClassification.from_pretrained(
        str(path), local_files_only=True, output_loading_info=True
    )
    return sorted(info["missing_keys"])


BUILDERS = {
    "pipeline": lambda path, **options: pipeline("text-classification", path, **options),
    "TransformerLayer": lambda path, **options: TransformerLayer.from_pretrained(
        path, "text-classification", **options
    ),
}


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS.keys())
def test_a_bare_encoder_as_a_classifier_is_refused_naming_the_weights_it_lacks(build):
    missing = transformers_missing_weights(bert_encoder())
    assert any("classifier" in name for name in missing)
    with pytest.raises(ModelLoadError, match="allow_untrained_head=True") as error:
        build(bert_encoder())
    for name in missing:
        assert name in str(error.value)


def test_allow_untrained_head_builds_the_new_head():
    from transformers import AutoConfig

    model = pipeline("text-classification", bert_encoder(), allow_untrained_head=True)
    outputs = run(model, SENTENCES)
    labels = AutoConfig.from_pretrained(str(bert_encoder())).id2label
    assert outputs["probabilities"].shape == (len(SENTENCES), len(labels))
    assert {label.decode() for label in outputs["label"]} <= set(labels.values())


def test_export_command_refuses_a_bare_encoder_as_a_classifier_in_one_line(capsys, tmp_path):
    code = main(["export", "--task", "text-classification", "--model", str(bert_encoder()),
                 "--output", str(tmp_path / "models" / "m" / "1")])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1 and "--allow-untrained-head" in error
    assert not (tmp_path / "models").exists()


def test_export_command_labels_name_the_new_head():
    args = build_parser().parse_args(
        ["export", "--task", "text-classification", "--model", str(bert_encoder()),
         "--output", "unused", "--allow-untrained-head", "--labels", "a", "b", "c"]
    )  # fmt: skip
    model = pipeline(args.task, args.model, **pipeline_options(args))
    assert model.get_layer("transformer").labels == ["a", "b", "c"]
    outputs = run(model, SENTENCES)
    assert outputs["probabilities"].shape == (len(SENTENCES), 3)
    assert {label.decode() for label in outputs["label"]} <= {"a", "b", "c"}


def test_export_command_refuses_duplicate_labels(capsys):
    code = main(["export", "--task", "text-classification", "--model", str(bert_encoder()),
                 "--output", "unused", "--labels", "a", "a"])  # fmt: skip
    assert code == 1
    assert "--labels has duplicates" in capsys.readouterr().err


ENCODERS = {
    # name: (checkpoint, position limit)
    "bert": (short_bert_encoder, 128),
    "roberta": (roberta_encoder, ROBERTA_POSITION_ROWS - 2),
}


@pytest.mark.parametrize(("checkpoint", "limit"), ENCODERS.values(), ids=ENCODERS.keys())
def test_the_position_limit_is_where_the_transformers_model_starts_failing(checkpoint, limit):
    layer = TransformerLayer.from_pretrained(checkpoint(), "feature-extraction")
    assert layer.max_sequence_length == limit
    # Token 1000: neither padding (BERT 0, RoBERTa 1) nor special.
    layer.hf_model(tf.fill([1, limit], 1000))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"is not in \[0, \d+\)"):
        layer.hf_model(tf.fill([1, limit + 1], 1000))


@pytest.mark.parametrize(("checkpoint", "limit"), ENCODERS.values(), ids=ENCODERS.keys())
def test_max_length_over_the_position_limit_is_refused_naming_both_numbers(checkpoint, limit):
    with pytest.raises(PipelineError, match=f"max_length={limit + 1}, .* only {limit} positions"):
        pipeline("feature-extraction", checkpoint(), max_length=limit + 1)


def test_a_tokenizer_limit_over_the_positions_is_refused_until_max_length_fits():
    """MiniLM's tokenizer allows 512 tokens; transformers would fail on the 129th position."""
    with pytest.raises(PipelineError, match="model_max_length 512, .* only 128 positions"):
        pipeline("feature-extraction", short_bert_encoder())
    model = pipeline("feature-extraction", short_bert_encoder(), max_length=128)
    long_text = " ".join(["word"] * 300)
    assert np.isfinite(run(model, [long_text])["embedding"]).all()


def test_export_command_refuses_a_max_length_over_the_positions_in_one_line(capsys, tmp_path):
    code = main(["export", "--task", "feature-extraction", "--model", str(bert_encoder()),
                 "--output", str(tmp_path / "models" / "m" / "1"),
                 "--max-length", "1000"])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 1
    # The CLI names its flags where the pipeline's message names max_length=.
    assert error.count("\n") == 1 and "--max-length=1000" in error and "512 positions" in error
    assert not (tmp_path / "models").exists()


def test_a_missing_pooler_is_refused_for_classification_but_not_for_embeddings():
    """A BERT classifier's head reads the pooler; the last hidden state embeddings never do."""
    path = save_tiny_checkpoint("bert-token-classifier", "TFBertForTokenClassification")
    assert any("pooler" in name for name in transformers_missing_weights(path))
    with pytest.raises(ModelLoadError, match="pooler"):
        pipeline("text-classification", path)
    assert run(pipeline("feature-extraction", path), SENTENCES)["embedding"].shape[0] == 4
