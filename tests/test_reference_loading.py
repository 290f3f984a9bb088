"""Whatever AutoTokenizer loads, TokenizerLayer.from_pretrained builds, with the same ids.

Llama-style folders whose tokenizer_config.json sets add_prefix_space make transformers
ignore tokenizer.json and convert tokenizer.model (LlamaTokenizerFast forces from_slow),
which needs sentencepiece and protobuf: tfpipe requires both, and compiles the converted
tokenizer, not the file on disk. A folder that lacks what that conversion needs fails with
one tfpipe message naming the fix, not transformers' error.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from model_fixtures import load_hf_tokenizer
from parity import LayerRunner, check_parity, shifted
from samples import sample
from tokenizers import Tokenizer, pre_tokenizers

from tfpipe import TokenizerLayer
from tfpipe.tokenization import UnsupportedComponentError

# Texts checked per configuration (each is one BPE word: Llama has no pre-tokenizer).
TEXTS = 600
TRAINING_STRIDE = 10
LLAMA_CONFIGS = {
    "add_prefix_space=False": {"add_prefix_space": False},
    "add_prefix_space=True": {"add_prefix_space": True},
    "add_prefix_space=True-legacy=False": {"add_prefix_space": True, "legacy": False},
}


@pytest.fixture(scope="module")
def sentencepiece_model(corpus, tmp_path_factory) -> Path:
    """A tiny Llama-like SentencePiece BPE model (byte fallback, split digits) trained on
    every TRAINING_STRIDE-th course text: the other texts hold pieces it never saw."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus[::TRAINING_STRIDE]), model_writer=model,
        model_type="bpe", vocab_size=1000, character_coverage=0.98, byte_fallback=True,
        split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("sentencepiece") / "tokenizer.model"
    path.write_bytes(model.getvalue())
    return path


@pytest.fixture(scope="module")
def disk_tokenizer_json(sentencepiece_model) -> str:
    """The model's tokenizer.json as published Llama checkpoints hold it: Prepend('▁') +
    Replace(' ', '▁') (converted with add_prefix_space, which their configs do not set)."""
    from transformers import LlamaTokenizerFast

    converted = LlamaTokenizerFast(
        vocab_file=str(sentencepiece_model), legacy=True, add_prefix_space=True
    )
    return converted.backend_tokenizer.to_str()


def llama_folder(folder: Path, model: Path, config: dict, tokenizer_json: str | None) -> Path:
    """A Llama checkpoint's tokenizer files: tokenizer.model, tokenizer_config.json and, when
    given, tokenizer.json."""
    folder.mkdir()
    shutil.copy(model, folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", **config}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    if tokenizer_json is not None:
        (folder / "tokenizer.json").write_text(tokenizer_json)
    return folder


def check_texts_and_pairs(folder: Path, texts: list[str]) -> None:
    """Parity on `texts` alone, then as pairs padded (left, as Llama pads) with its eos."""
    hf = load_hf_tokenizer(folder)
    layer = LayerRunner(TokenizerLayer.from_pretrained(folder, padding=False, truncation=False))
    check_parity(layer, hf, texts, truncation=False)
    hf.pad_token = hf.eos_token
    padded = LayerRunner(TokenizerLayer.from_pretrained(folder, pad_token=hf.eos_token))
    check_parity(padded, hf, texts, shifted(texts, 7), padding="longest", truncation=True)


@pytest.mark.parametrize("config", LLAMA_CONFIGS.values(), ids=LLAMA_CONFIGS)
@pytest.mark.parametrize("with_json", [True, False], ids=["tokenizer.json", "no-tokenizer.json"])
def test_llama_folder_converted_by_transformers_matches(
    config, with_json, sentencepiece_model, disk_tokenizer_json, corpus, tmp_path
):
    tokenizer_json = disk_tokenizer_json if with_json else None
    folder = llama_folder(tmp_path / "llama", sentencepiece_model, config, tokenizer_json)
    check_texts_and_pairs(folder, sample(corpus[1::TRAINING_STRIDE], TEXTS))


def test_the_layer_compiles_the_converted_tokenizer_not_the_file(
    sentencepiece_model, disk_tokenizer_json, tmp_path
):
    config = LLAMA_CONFIGS["add_prefix_space=False"]
    folder = llama_folder(tmp_path / "llama", sentencepiece_model, config, disk_tokenizer_json)
    compiled = json.loads(TokenizerLayer.from_pretrained(folder, padding=False).tokenizer_json)
    converted = json.loads(load_hf_tokenizer(folder).backend_tokenizer.to_str())
    assert compiled["normalizer"] == converted["normalizer"]
    assert compiled["normalizer"] != json.loads(disk_tokenizer_json)["normalizer"]


@pytest.mark.slow
def test_llama_2_with_add_prefix_space_matches_on_course_corpus(shared_dir, corpus, tmp_path):
    model = shared_dir / "tokenizers" / "llama-2" / "tokenizer.model"
    folder = llama_folder(tmp_path / "llama-2", model, {"add_prefix_space": False}, None)
    check_texts_and_pairs(folder, sample(corpus, 2000))


def test_a_tokenizer_json_that_transformers_ignores_is_not_checked(
    sentencepiece_model, disk_tokenizer_json, tmp_path
):
    """A refused component (FixedLength of length 0) counts when transformers reads the file,
    not when it converts tokenizer.model instead."""
    document = json.loads(disk_tokenizer_json)
    document["pre_tokenizer"] = json.loads(pre_tokenizers.FixedLength(length=0).__getstate__())
    unsupported = Tokenizer.from_str(json.dumps(document)).to_str()
    config = LLAMA_CONFIGS["add_prefix_space=True"]
    converting = llama_folder(tmp_path / "converting", sentencepiece_model, config, unsupported)
    assert TokenizerLayer.from_pretrained(converting, padding=False).pipeline is not None
    reading = llama_folder(tmp_path / "reading", sentencepiece_model, {}, unsupported)
    with pytest.raises(UnsupportedComponentError, match="FixedLength"):
        TokenizerLayer.from_pretrained(reading, padding=False)


# --- What the conversion needs and a folder lacks ------------------------------------------------


def test_add_prefix_space_without_tokenizer_model_names_the_missing_file(
    disk_tokenizer_json, tmp_path
):
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(disk_tokenizer_json)
    config = {"tokenizer_class": "LlamaTokenizer", "add_prefix_space": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError) as error:
        TokenizerLayer.from_pretrained(folder)
    message = str(error.value)
    assert message.startswith(f"transformers cannot load the tokenizer of {folder} (")
    assert ("its tokenizer_config.json sets add_prefix_space, so transformers builds it from "
            "the slow tokenizer's files, and it has none") in message
    assert message.endswith("copy the model's (such as tokenizer.model) into it")
    assert error.value.__suppress_context__


@pytest.mark.parametrize("with_json", [True, False], ids=["tokenizer.json", "no-tokenizer.json"])
def test_conversion_without_sentencepiece_says_what_to_install(
    with_json, sentencepiece_model, disk_tokenizer_json, tmp_path, monkeypatch
):
    """As transformers sees an environment without sentencepiece: no slow Llama class."""
    from transformers import LlamaTokenizerFast
    from transformers.utils import import_utils

    monkeypatch.setattr(import_utils, "_sentencepiece_available", False)
    monkeypatch.setattr(LlamaTokenizerFast, "slow_tokenizer_class", None)
    tokenizer_json = disk_tokenizer_json if with_json else None
    config = LLAMA_CONFIGS["add_prefix_space=True"] if with_json else {}
    folder = llama_folder(tmp_path / "llama", sentencepiece_model, config, tokenizer_json)
    with pytest.raises(ImportError) as error:
        TokenizerLayer.from_pretrained(folder)
    message = str(error.value)
    assert message.startswith(f"transformers cannot load the tokenizer of {folder} (")
    reason = "sets add_prefix_space" if with_json else "has no tokenizer.json"
    assert reason in message
    assert message.endswith(
        "which needs sentencepiece, as tfpipe declares: pip install sentencepiece"
    )
