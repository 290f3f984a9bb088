"""The served contenders of bench/serving.py, each a function texts → probabilities: the
tfpipe exports, the hand-written HF tokenizer + TF model, transformers' pipeline, and the
model-only SavedModel (ids in)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from _serving_report import HAND_WRITTEN, HF_PIPELINE, MAX_LENGTH, TFPIPE

from tfpipe.einsum_transposes import einsum_transposes

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

Classify = Callable[[list[str]], np.ndarray]


@dataclass
class Served:
    """What is timed: per contender, texts → probabilities [batch, labels]."""

    classifiers: dict[str, Classify]
    tokenize: Callable[[list[str]], dict[str, tf.Tensor]]
    model_only: Callable[..., dict[str, tf.Tensor]]
    hf_tokenizer: object
    config: object


def ids_signature() -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, None], tf.int32, name=name) for name in MODEL_INPUTS]


def probabilities_function(
    model: tf_keras.Model, einsum: bool = False
) -> Callable[..., dict[str, tf.Tensor]]:
    """The TF model + softmax as a tf.function on ids: the hand-written serving graph; with
    `einsum`, its transposes traced as tfpipe traces them (tfpipe/einsum_transposes.py)."""

    @tf.function(input_signature=ids_signature())
    def classify(input_ids, attention_mask, token_type_ids):
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        features["token_type_ids"] = token_type_ids
        with einsum_transposes() if einsum else contextlib.nullcontext():
            logits = model(features, training=False).logits
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    return classify


def save_model_only(model: tf_keras.Model, folder: Path, einsum: bool = False) -> None:
    """The same weights behind an ids-in signature: serving minus in-graph tokenization."""
    module = tf.Module()
    module.model_variables = list(model.variables)
    signatures = {"serving_default": probabilities_function(model, einsum)}
    tf.saved_model.save(module, str(folder), signatures=signatures)


def hf_encode(hf_tokenizer, texts: list[str]) -> dict[str, tf.Tensor]:
    """`padding=True` (longest), as a hand-written client and transformers' pipeline pad."""
    tokens = hf_tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="np"
    )
    return {name: tf.constant(tokens[name], tf.int32) for name in MODEL_INPUTS}


def hf_pipeline_classifier(classifier) -> Classify:
    """transformers' pipeline, all scores, back in label order (it sorts them by score)."""
    id2label = classifier.model.config.id2label
    labels = [id2label[index] for index in range(len(id2label))]

    def classify(texts: list[str]) -> np.ndarray:
        results = classifier(texts, top_k=None, truncation=True, max_length=MAX_LENGTH)
        scores = [{item["label"]: item["score"] for item in row} for row in results]
        return np.array([[row[label] for label in labels] for row in scores])

    return classify


def signature(saved_model: Path, name: str = "serving_default") -> Callable[..., dict]:
    """A loaded SavedModel's signature; the closure keeps the loaded object (its variables)."""
    loaded = tf.saved_model.load(str(saved_model))
    return lambda **inputs: loaded.signatures[name](**inputs)


def served_classifier(export_dir: Path) -> Classify:
    serve = signature(export_dir)
    return lambda texts: serve(text=tf.constant(texts))["probabilities"].numpy()


def einsum_model_only_dir(model_only_dir: Path) -> Path:
    """Where the model-only SavedModel with tfpipe's transposes is saved, beside the other."""
    return model_only_dir.with_name(model_only_dir.name + "_einsum")


def load_contenders(exports: dict[str, Path], checkpoint: Path, model_only_dir: Path) -> Served:
    """The served SavedModels, the two HF anchors, and the model-only SavedModels (saved here:
    as transformers traces the model, and with tfpipe's transposes)."""
    from transformers import pipeline

    classifier = pipeline(
        "text-classification", model=str(checkpoint), framework="tf", torch_dtype=None
    )
    hf_tokenizer, hf_model = classifier.tokenizer, classifier.model
    classify_ids = probabilities_function(hf_model)
    save_model_only(hf_model, model_only_dir)
    save_model_only(hf_model, einsum_model_only_dir(model_only_dir), einsum=True)
    tokenize = signature(exports[TFPIPE], "tokenize")

    def hand_written(texts: list[str]) -> np.ndarray:
        return classify_ids(**hf_encode(hf_tokenizer, texts))["probabilities"].numpy()

    classifiers = {label: served_classifier(path) for label, path in exports.items()}
    classifiers[HAND_WRITTEN] = hand_written
    classifiers[HF_PIPELINE] = hf_pipeline_classifier(classifier)
    return Served(
        classifiers,
        lambda texts: tokenize(text=tf.constant(texts)),
        signature(model_only_dir),
        hf_tokenizer,
        hf_model.config,
    )
