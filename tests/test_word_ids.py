"""special_tokens_mask, word_ids and sequence_ids (TokenizerLayer's return_special_tokens_mask
and return_word_ids) against the HF fast tokenizer's `return_special_tokens_mask=True`,
`BatchEncoding.word_ids(i)` and `sequence_ids(i)` (None as -1), with ids and masks alike."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf
from annotations import (
    ANNOTATED,
    COMBOS,
    FAMILIES,
    FULL_COMBOS,
    MAX_LENGTH,
    SHARED,
    check_annotations,
    edge_texts,
    hf_rows,
    left_sided_copy,
    mismatches,
    run_combo,
    served_and_expected,
    tokenizer_pair,
)
from parity import LayerRunner, shifted
from samples import FULL

from tfpipe import TokenizerLayer
from tfpipe.tokenization.compiled import compiled_tokenizer

# Every n-th course text for the family tests and for the sweep, smaller strides in a full run
# (`samples.sample` would take all 24k texts there, for every combination).
FAMILY_STRIDE = 120 if FULL else 600
SWEEP_STRIDE = 24 if FULL else 120


# --- Default run: one tokenizer per family -------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS, ids=["longest", "unpadded", "max_length-only_second"])
@pytest.mark.parametrize("name", FAMILIES)
def test_word_ids_match_hf_on_course_texts(
    name, combo, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    texts = corpus[::FAMILY_STRIDE]
    run_combo(
        shared_dir / "tokenizers" / name,
        hf_tokenizer,
        tokenizer_layer,
        texts,
        shifted(texts, 7),
        combo,
    )


@pytest.mark.parametrize("name", FAMILIES)
def test_word_ids_match_hf_on_added_tokens_empty_and_invalid_texts(
    name, shared_dir, hf_tokenizer, tokenizer_layer
):
    path = shared_dir / "tokenizers" / name
    texts = edge_texts(hf_tokenizer(path))
    for combo in (("longest", True, MAX_LENGTH, None), (False, False, None, None)):
        run_combo(path, hf_tokenizer, tokenizer_layer, texts, shifted(texts, 3), combo)


def test_long_texts_cut_before_encoding_keep_exact_word_ids(
    shared_dir, hf_tokenizer, tokenizer_layer
):
    """bert cuts long single texts before whitespace; t5 (Unigram) stops inside long words."""
    prose = "Hello, world! Naïve café; 東京 tokenization ok. " * 400
    for name in ("bert-base-cased", "t5-small"):
        path = shared_dir / "tokenizers" / name
        layer, hf = tokenizer_pair(
            path, hf_tokenizer, tokenizer_layer, "longest", max_length=MAX_LENGTH
        )
        assert layer.layer._word_token_limit() is not None or layer.layer._cut_bytes is not None
        texts = [prose, "y" * 5000, "z" * 40 + " " + prose, "short", ""]
        check_annotations(
            layer, hf, texts, padding="longest", truncation=True, max_length=MAX_LENGTH
        )


@pytest.mark.parametrize("name", ["bert-base-cased", "llama-2"])
def test_left_truncation_and_left_padding_match_hf(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer, tmp_path
):
    folder = left_sided_copy(shared_dir / "tokenizers" / name, tmp_path, hf_tokenizer)
    texts = corpus[:: 2 * FAMILY_STRIDE] + edge_texts(hf_tokenizer(folder))
    for combo in (("longest", "longest_first", MAX_LENGTH, 8), (False, "only_first", 24, None)):
        run_combo(folder, hf_tokenizer, tokenizer_layer, texts, shifted(texts, 5), combo)


def test_words_without_tokens_still_take_an_index(tmp_path):
    """A BPE without unk drops characters it lacks: the word `b` yields no token, and the
    next word is still numbered after it (tokenizers numbers splits, not tokens). The
    tokenizer has no post-processor: HF reports padding of single texts as sequence 0."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"a": 0, "c": 1, "<pad>": 2, "ac": 3}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "c")]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(["<pad>"])
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    hf = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    layer = LayerRunner(TokenizerLayer.from_pretrained(tmp_path, **ANNOTATED))
    texts = ["a b c", "bb a<pad>c b ac", "b", ""]
    for pairs in (None, shifted(texts, 1)):
        check_annotations(layer, hf, texts, pairs, padding="longest", truncation=True)


def test_empty_batch_gives_annotations_shaped_as_ids(shared_dir, tokenizer_layer):
    path = shared_dir / "tokenizers" / "bert-base-cased"
    for padding in ("longest", False):
        output = tokenizer_layer(path, padding=padding, **ANNOTATED)([], None)
        shape = output["input_ids"].shape
        assert all(value.shape == shape for value in output.values())


def test_options_off_keep_the_default_outputs_and_encoder(shared_dir, hf_tokenizer):
    """No word-index encoder is traced unless word ids are asked for; special_tokens_mask
    alone needs none."""
    path = shared_dir / "tokenizers" / "roberta-base"
    plain = TokenizerLayer.from_pretrained(path)
    mask_only = TokenizerLayer.from_pretrained(path, return_special_tokens_mask=True)
    compiled = compiled_tokenizer(plain.tokenizer_json)
    assert plain._encode is mask_only._encode is compiled.encoder()
    assert sorted(plain(tf.constant(["a b"]))) == ["attention_mask", "input_ids"]
    texts = ["Hello <mask> world", ""]
    want = hf_rows(hf_tokenizer(path), texts, None, padding="longest", truncation=True)
    del want["word_ids"], want["sequence_ids"]
    assert not mismatches(LayerRunner(mask_only)(texts), want, texts, None, padded=True)


def test_get_config_round_trip_keeps_the_options(shared_dir, corpus):
    path = shared_dir / "tokenizers" / "bert-base-cased"
    layer = TokenizerLayer.from_pretrained(path, padding=False, max_length=32, **ANNOTATED)
    config = layer.get_config()
    assert {key: config[key] for key in ANNOTATED} == ANNOTATED
    clone = TokenizerLayer.from_config(config)
    texts = tf.constant(corpus[:20])
    expected, got = layer(texts), clone(texts)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key].to_list() == expected[key].to_list()


def test_export_with_annotations_passes_the_self_check(shared_dir, hf_tokenizer, tmp_path):
    """export() audits the ops and reloads the SavedModel in a TensorFlow-only process (TF1
    `serve` loader), which must return what the layer and HF return."""
    path = shared_dir / "tokenizers" / "roberta-base"
    served, want = served_and_expected(path, ANNOTATED, hf_tokenizer(path), tmp_path)
    assert served == want


# --- Full run: every shared tokenizer, the corpus sample, every strategy and padding --------------


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED)
def test_every_tokenizer_strategy_and_padding_match_hf(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    texts = corpus[::SWEEP_STRIDE]
    pairs = shifted(texts, 11)
    path = shared_dir / "tokenizers" / name
    for combo in FULL_COMBOS:
        run_combo(path, hf_tokenizer, tokenizer_layer, texts, pairs, combo)
    edges = edge_texts(hf_tokenizer(path))
    for combo in FULL_COMBOS:
        run_combo(path, hf_tokenizer, tokenizer_layer, edges, shifted(edges, 3), combo)
