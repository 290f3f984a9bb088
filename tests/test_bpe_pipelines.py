"""Pipelines on byte-level BPE models (RoBERTa, GPT-2) against the HF flow, through export."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import (
    CLASSIFIER_LABELS,
    NLI_LABELS,
    SENTENCES,
    hf_sequence_classifier,
    hf_tokenizer,
    work_dir,
)
from texts import generate_texts
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from tfpipe.export import export
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.pipelines import pipeline

EOS = "<|endoftext|>"
MAX_LENGTH = 64
TEXTS = [
    *SENTENCES,
    "It's fine, isn't it? We'll see — they've said 'maybe'.",
    "  spaces\tand\nnewlines\u3000and\xa0NBSP  ",
    "Emoji 👍🏽 and 🤗 and <mask> in the middle",
    "long " * 80,
    "",
]
PAIRS = [*reversed(TEXTS[:-1]), "short"]


def train_byte_level(style: str) -> Tokenizer:
    """A byte-level BPE like roberta-base ("roberta") or gpt2 ("gpt2"), trained here."""
    if style == "roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True)]
    else:
        specials = [EOS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(generate_texts(2000, seed=5) + SENTENCES, trainer)
    if style == "roberta":
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


def tokenizer_config(style: str) -> dict:
    if style == "roberta":
        return dict(tokenizer_class="RobertaTokenizer", add_prefix_space=False, bos_token="<s>",
                    eos_token="</s>", cls_token="<s>", sep_token="</s>", unk_token="<unk>",
                    pad_token="<pad>", mask_token="<mask>", model_max_length=MAX_LENGTH)
    return dict(tokenizer_class="GPT2Tokenizer", bos_token=EOS, eos_token=EOS, unk_token=EOS,
                pad_token=EOS, model_max_length=MAX_LENGTH)


def write_tokenizer(style: str, folder: Path) -> None:
    train_byte_level(style).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(style)))


def model_config(style: str, labels: dict[int, str], vocab_size: int):
    from transformers import GPT2Config, RobertaConfig

    label_options = dict(id2label=labels, label2id={label: i for i, label in labels.items()})
    if style == "roberta":
        return RobertaConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=37, max_position_embeddings=MAX_LENGTH + 2, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, **label_options)
    return GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=2,
                      n_positions=MAX_LENGTH, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                      **label_options)


@functools.cache
def checkpoint(style: str, model_class_name: str, labels: tuple[tuple[int, str], ...],
               tokenizer_source: Path | None = None) -> Path:
    """A tiny randomly initialised TF model saved with its tokenizer: trained, or copied."""
    import tf_keras
    import transformers

    source = "trained" if tokenizer_source is None else tokenizer_source.name
    destination = work_dir() / f"{model_class_name}-{labels[-1][1]}-{source}"
    destination.mkdir()
    if tokenizer_source is None:
        write_tokenizer(style, destination)
    else:
        shutil.copy(tokenizer_source / "tokenizer.json", destination / "tokenizer.json")
        config = json.loads((tokenizer_source / "tokenizer_config.json").read_text())
        config["model_max_length"] = MAX_LENGTH  # the tiny model's positions
        (destination / "tokenizer_config.json").write_text(json.dumps(config))
    vocab_size = len(hf_tokenizer(destination))
    tf_keras.utils.set_random_seed(0)
    model_class = getattr(transformers, model_class_name)
    model = model_class(model_config(style, dict(labels), vocab_size))
    model(model.dummy_inputs)
    model.save_pretrained(str(destination))
    return destination


def roberta_classifier() -> Path:
    return checkpoint("roberta", "TFRobertaForSequenceClassification",
                      tuple(CLASSIFIER_LABELS.items()))


def roberta_nli() -> Path:
    return checkpoint("roberta", "TFRobertaForSequenceClassification", tuple(NLI_LABELS.items()))


def gpt2_classifier() -> Path:
    return checkpoint("gpt2", "TFGPT2ForSequenceClassification", tuple(CLASSIFIER_LABELS.items()))


def hf_flow_probabilities(path: Path, texts, pairs=None) -> np.ndarray:
    """HF tokenizer (right padding to the longest, truncation) -> the same TF model -> softmax."""
    encoded = hf_tokenizer(path)(texts, pairs, padding=True, truncation=True, return_tensors="tf")
    logits = hf_sequence_classifier(path)(**encoded).logits
    return tf.nn.softmax(logits, axis=-1).numpy()


def run(model, texts, **more_inputs) -> dict[str, np.ndarray]:
    inputs = {"text": tf.constant(texts), **{k: tf.constant(v) for k, v in more_inputs.items()}}
    return {name: value.numpy() for name, value in model(inputs).items()}


def assert_matches_hf_flow(outputs: dict, path: Path, texts, pairs=None) -> None:
    expected = hf_flow_probabilities(path, texts, pairs)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    id2label = hf_sequence_classifier(path).config.id2label
    assert [label.decode() for label in outputs["label"]] == [
        id2label[i] for i in expected.argmax(-1)
    ]


def exported_matches_hf_flow(model, path: Path, name: str) -> None:
    """Export (the self-check reloads it as TF Serving would), then serve and compare."""
    exported = export(model, work_dir() / "saved_models" / name / "1")
    assert exported.op_types and not foreign_ops(exported.op_types)
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    assert_matches_hf_flow(
        {key: value.numpy() for key, value in served(text=tf.constant(TEXTS)).items()},
        path, TEXTS,
    )


@pytest.mark.parametrize("checkpoint_path", [roberta_classifier, gpt2_classifier],
                         ids=["roberta", "gpt2"])
def test_text_classification_matches_hf_flow_and_exports(checkpoint_path):
    path = checkpoint_path()
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)
    exported_matches_hf_flow(model, path, f"bpe-{path.name}")


@pytest.mark.parametrize("checkpoint_path", [roberta_classifier, gpt2_classifier],
                         ids=["roberta", "gpt2"])
def test_text_pair_classification_matches_hf_flow(checkpoint_path):
    path = checkpoint_path()
    model = pipeline("text-classification", path, text_pair=True)
    assert_matches_hf_flow(run(model, TEXTS, text_pair=PAIRS), path, TEXTS, PAIRS)


def test_gpt2_classifier_pools_the_last_token_before_right_padding():
    """A text scores the same alone and in a batch padded past it, as GPT-2 pools the last
    non-pad token."""
    model = pipeline("text-classification", gpt2_classifier())
    batched = run(model, TEXTS)["probabilities"]
    for i, text in enumerate(TEXTS[:4]):
        np.testing.assert_allclose(run(model, [text])["probabilities"][0], batched[i], atol=1e-5)


def test_gpt2_checkpoint_without_pad_token_cannot_build_a_padding_pipeline(tmp_path):
    source = gpt2_classifier()
    shutil.copytree(source, tmp_path / "ckpt")
    config_path = tmp_path / "ckpt" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "pad_token": None}))
    with pytest.raises(ValueError, match="padding token"):
        pipeline("text-classification", tmp_path / "ckpt")


ZERO_SHOT_LABELS = ["politics", "sports", "cooking"]


@functools.cache
def hf_zero_shot(path: Path):
    from transformers import pipeline as hf_pipeline

    return hf_pipeline("zero-shot-classification", model=hf_sequence_classifier(path),
                       tokenizer=hf_tokenizer(path), framework="tf", torch_dtype=None)


@pytest.mark.parametrize("multi_label", [False, True])
def test_roberta_nli_zero_shot_matches_the_transformers_pipeline(multi_label):
    """Exported too, once: the self-check reloads it as TF Serving would."""
    path = roberta_nli()
    model = pipeline("zero-shot-classification", path, candidate_labels=ZERO_SHOT_LABELS,
                     hypothesis_template="This text is about {}.", multi_label=multi_label)
    outputs = run(model, TEXTS[:3])
    for text, probabilities, label in zip(
        TEXTS[:3], outputs["probabilities"], outputs["label"], strict=True
    ):
        reference = hf_zero_shot(path)(text, ZERO_SHOT_LABELS, multi_label=multi_label,
                                       hypothesis_template="This text is about {}.")
        by_label = dict(zip(reference["labels"], reference["scores"], strict=True))
        np.testing.assert_allclose(probabilities, [by_label[x] for x in ZERO_SHOT_LABELS],
                                   atol=1e-5)
        assert label.decode() == reference["labels"][0]
    if not multi_label:
        exported = export(model, work_dir() / "saved_models" / "bpe-nli" / "1")
        assert exported.op_types and not foreign_ops(exported.op_types)


def test_roberta_base_tokenizer_classifier_matches_hf_flow(shared_dir):
    """The real roberta-base tokenizer in a tiny checkpoint (needs ../shared)."""
    path = checkpoint("roberta", "TFRobertaForSequenceClassification",
                      tuple(CLASSIFIER_LABELS.items()),
                      tokenizer_source=shared_dir / "tokenizers" / "roberta-base")
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)
