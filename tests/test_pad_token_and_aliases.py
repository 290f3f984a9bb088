"""Issue 18: a pad token for tokenizers without one (GPT-2, Llama), transformers' task
aliases, and a clear error for a folder without tokenizer.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, load_hf_tokenizer, run
from parity import LayerRunner, check_parity, shifted
from pipeline_checkpoints import EOS, gpt2_classifier
from samples import slow_beyond

from tfpipe.cli import main
from tfpipe.export.saved_model import pipeline_task
from tfpipe.pipelines import PIPELINE_BUILDERS, TASK_ALIASES, PipelineError, pipeline
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer

EDGE_CASES = ["", EOS, f"a{EOS}b {EOS}", "</s> <s>", "long " * 100, "Emoji 👍🏽 and 🤗"]
TEXTS = [*SENTENCES, "It's fine, isn't it?", "Short."]


def checkpoint_without_pad_token(folder: Path, keep_model_pad_token_id: bool = False) -> Path:
    """The tiny GPT-2 classifier as GPT-2 itself ships: no pad token in tokenizer_config.json
    and, unless kept, no pad_token_id in config.json."""
    shutil.copytree(gpt2_classifier(), folder)
    tokenizer_config = folder / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text())
    tokenizer_config.write_text(json.dumps({**settings, "pad_token": None}))
    if not keep_model_pad_token_id:
        config = json.loads((folder / "config.json").read_text())
        del config["pad_token_id"]
        (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- pad_token on the tokenizer layer ----------------------------------------------------------


# llama-2 pads on the left, whose code the parity files run: make test-full only.
@pytest.mark.parametrize(
    ("name", "pad_token", "padding", "max_length"),
    slow_beyond([("gpt2", EOS, "longest", None), ("gpt2", EOS, "max_length", 64),
                 ("llama-2", "</s>", "longest", 48)],
                [("gpt2", EOS, "longest", None), ("gpt2", EOS, "max_length", 64)]),
)  # fmt: skip
def test_pad_token_pads_exactly_like_hf_with_that_pad_token_set(
    name, pad_token, padding, max_length, shared_dir, corpus, tokenizer_layer
):
    """As `hf.pad_token = hf.eos_token`."""
    path = shared_dir / "tokenizers" / name
    hf = load_hf_tokenizer(path)
    hf.pad_token = pad_token
    layer = tokenizer_layer(path, pad_token=pad_token, padding=padding, max_length=max_length)
    texts = EDGE_CASES + corpus[::700][:34]
    options = dict(padding=padding, truncation=True, max_length=max_length)
    check_parity(layer, hf, texts, **options)
    check_parity(layer, hf, texts, shifted(texts, 7), **options)


def test_pad_token_is_kept_in_the_layer_config(shared_dir):
    layer = TokenizerLayer.from_pretrained(shared_dir / "tokenizers" / "gpt2", pad_token=EOS)
    rebuilt = TokenizerLayer.from_config(layer.get_config())
    assert rebuilt.pad_token == EOS and rebuilt.pad_token_id == layer.pad_token_id == 50256
    texts = ["a", "a longer text"]
    tf.debugging.assert_equal(LayerRunner(rebuilt)(texts)["input_ids"],
                              LayerRunner(layer)(texts)["input_ids"])


def test_a_pad_token_outside_the_vocabulary_is_refused_naming_it(shared_dir):
    with pytest.raises(ValueError, match=r"pad_token '<pad>' is not a token of the tokenizer"):
        TokenizerLayer.from_pretrained(shared_dir / "tokenizers" / "gpt2", pad_token="<pad>")


@pytest.mark.parametrize(("name", "eos"), [("gpt2", EOS), ("llama-2", "</s>")])
def test_padding_without_a_pad_token_names_the_pad_token_option(name, eos, shared_dir):
    with pytest.raises(ValueError, match="Asking to pad") as error:
        TokenizerLayer.from_pretrained(shared_dir / "tokenizers" / name)
    assert f"pad_token={eos!r} (its eos token)" in str(error.value)


# --- pad_token on pipelines and the CLI --------------------------------------------------------


def test_pipeline_pad_token_classifies_like_the_hf_flow_with_pad_token_set(tmp_path):
    """The HF flow sets the tokenizer's pad token and the model config's pad_token_id, by
    which GPT-2's classifier finds each text's last token; without the latter it would pool
    padding."""
    from transformers import TFAutoModelForSequenceClassification

    path = checkpoint_without_pad_token(tmp_path / "gpt2")
    model = pipeline("text-classification", path, pad_token=EOS)
    hf = load_hf_tokenizer(path)
    hf.pad_token = hf.eos_token
    hf_model = TFAutoModelForSequenceClassification.from_pretrained(str(path))
    assert hf_model.config.pad_token_id is None
    hf_model.config.pad_token_id = hf.pad_token_id
    encoded = hf(TEXTS, padding=True, truncation=True, return_tensors="tf")
    expected = tf.nn.softmax(hf_model(**encoded).logits, axis=-1).numpy()
    np.testing.assert_allclose(run(model, TEXTS)["probabilities"], expected, atol=1e-5)


def test_pipeline_pad_token_other_than_the_model_config_pad_token_id_is_refused(tmp_path):
    path = checkpoint_without_pad_token(tmp_path / "gpt2", keep_model_pad_token_id=True)
    with pytest.raises(PipelineError, match="config.json has pad_token_id 0"):
        pipeline("text-classification", path, pad_token="a")


def test_cli_export_passes_pad_token_to_the_pipeline(capsys, tmp_path):
    path = checkpoint_without_pad_token(tmp_path / "gpt2")
    code = main(["export", "--task", "text-classification", "--model", str(path),
                 "--output", str(tmp_path / "m" / "1"), "--pad-token", "<pad>"])
    assert code == 1
    assert "--pad-token '<pad>' is not a token" in capsys.readouterr().err


# --- task aliases ------------------------------------------------------------------------------


def test_transformers_aliases_of_tfpipe_tasks_are_accepted():
    from transformers.pipelines import TASK_ALIASES as TRANSFORMERS_ALIASES

    theirs = {alias: task for alias, task in TRANSFORMERS_ALIASES.items()
              if task in PIPELINE_BUILDERS}  # fmt: skip
    assert theirs == TASK_ALIASES
    model = pipeline("sentiment-analysis", gpt2_classifier())
    assert pipeline_task(model) == "text-classification"  # what the export metadata records


def test_cli_export_accepts_the_sentiment_analysis_alias(capsys, tmp_path):
    """The alias reaches pipeline(), which resolves it before looking at the folder."""
    code = main(["export", "--task", "sentiment-analysis", "--model", str(tmp_path / "missing"),
                 "--output", str(tmp_path / "m" / "1")])
    assert code == 1
    assert "is not a checkpoint folder" in capsys.readouterr().err


# --- folders without tokenizer.json ------------------------------------------------------------


def test_a_folder_without_tokenizer_files_says_which_files_it_has(tmp_path):
    shutil.copy(gpt2_classifier() / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError) as error:
        TokenizerLayer.from_pretrained(tmp_path)
    assert str(error.value).startswith(
        f"no tokenizer.json in {tmp_path} (found: config.json): copy the model's tokenizer files"
    )


def test_a_checkpoint_without_tokenizer_json_says_how_to_write_it(tmp_path):
    path = tmp_path / "gpt2"
    shutil.copytree(gpt2_classifier(), path, ignore=shutil.ignore_patterns("tokenizer.json"))
    with pytest.raises(FileNotFoundError) as error:
        pipeline("text-classification", path)
    message = str(error.value)
    assert message.startswith(f"no tokenizer.json in {path} (found: config.json, tf_model.h5, "
                              "tokenizer_config.json): tfpipe needs the fast tokenizer's")
    assert message.endswith("AutoTokenizer.from_pretrained(folder).save_pretrained(folder)")
