"""`tfpipe.keras.pipeline`: strings in, class probabilities or embeddings out, as one Keras 3
functional model: `TokenizerLayer` -> keras-hub BERT backbone (built as config.json says,
bert.py) -> heads. The weights are the checkpoint's model.safetensors (bert_weights.py)."""

from __future__ import annotations

import json
import os
from typing import Any

import keras

from tfpipe.keras.bert import ConfiguredBertBackbone, backbone_arguments
from tfpipe.keras.bert_weights import SafetensorsWeights, load_backbone, load_dense
from tfpipe.keras.encoder import BackboneLayer
from tfpipe.keras.heads import ClassProbabilities, LabelLookup, SentencePooling
from tfpipe.keras.tokenizer_layer import TokenizerLayer
from tfpipe.model_config import ModelLoadError, checked_model_config
from tfpipe.pooling import sentence_transformers_pooling

TASK_ALIASES = {"sentiment-analysis": "text-classification"}
TASKS = ("text-classification", "feature-extraction")


class PipelineError(ValueError):
    """A Keras 3 pipeline cannot be built from the given task and options."""


def pipeline(
    task: str,
    model: str | os.PathLike,
    *,
    max_length: int | None = None,
    text_pair: bool = False,
    pooling: str | None = None,
    normalize: bool | None = None,
    allow_untrained_head: bool = False,
    id2label: dict[int, str] | None = None,
) -> keras.Model:
    """A Keras 3 model for ``task`` on the local BERT checkpoint folder ``model``.

    ``text-classification``: inputs ``text`` (and ``text_pair`` with ``text_pair=True``),
    outputs ``probabilities``, ``label``, ``score``; a checkpoint without classifier weights
    is refused unless ``allow_untrained_head=True`` (then ``id2label`` names the classes).
    ``feature-extraction``: ``embedding``, pooled as ``pooling``/``normalize`` say, else as
    the checkpoint's sentence-transformers config, else mean. The outputs equal
    ``tfpipe.pipeline``'s (tf-keras, transformers' TF model) within 1e-5.
    """
    task = TASK_ALIASES.get(task, task)
    if task not in TASKS:
        raise PipelineError(f"tfpipe.keras builds {', '.join(TASKS)}, not {task!r}")
    folder = os.fspath(model)
    if not os.path.isdir(folder):
        raise PipelineError(f"model {folder} is not a checkpoint folder")
    config = checked_model_config(folder)
    if task == "feature-extraction":
        if text_pair or allow_untrained_head or id2label is not None:
            raise PipelineError("feature-extraction takes pooling and normalize options only")
        return build_feature_extraction(folder, config, max_length, pooling, normalize)
    if pooling is not None or normalize is not None:
        raise PipelineError("pooling and normalize are feature-extraction options")
    return build_text_classification(
        folder, config, max_length, text_pair, allow_untrained_head, id2label
    )


def build_tokenizer(
    folder: str, config: dict[str, Any], max_length: int | None
) -> TokenizerLayer:
    """The checkpoint's tokenizer, refused when it can make sequences longer than the
    model's positions (they would fail at run time, in transformers too)."""
    tokenizer = TokenizerLayer.from_pretrained(folder, max_length=max_length, name="tokenizer")
    limit = config["max_position_embeddings"]
    if tokenizer.max_length is None or tokenizer.max_length > limit:
        raise PipelineError(
            f"tokens per text: {tokenizer.max_length or 'unlimited'}, but the model of {folder} "
            f"embeds only {limit} positions: pass max_length={limit} or less"
        )
    return tokenizer


def build_backbone(folder: str, config: dict[str, Any], with_pooler: bool):
    """The backbone with every weight from the checkpoint, and the weights file."""
    backbone = ConfiguredBertBackbone(**backbone_arguments(config, folder), name="backbone")
    weights = SafetensorsWeights(folder)
    load_backbone(backbone, weights, with_pooler)
    return backbone, weights


def run_backbone(backbone, encoded: dict, output: str):
    """The backbone's ``output`` for the tokenizer's outputs (encoder.py)."""
    layer = BackboneLayer(backbone, output, name=output.replace("_output", "_encoder"))
    return layer(encoded["input_ids"], encoded["attention_mask"], encoded.get("token_type_ids"))


def text_input(name: str = "text"):
    return keras.Input(shape=(), dtype="string", name=name)


def build_feature_extraction(
    folder: str, config: dict[str, Any], max_length: int | None,
    pooling: str | None, normalize: bool | None,
) -> keras.Model:
    settings = sentence_transformers_pooling(folder) or {"mode": "mean", "normalize": False}
    if pooling is not None:
        settings = {"mode": pooling, "normalize": False}
    if normalize is not None:
        settings["normalize"] = normalize
    pooler = SentencePooling(**settings, name="pooling")
    tokenizer = build_tokenizer(folder, config, max_length or sentence_bert_max_length(folder))
    backbone, _ = build_backbone(folder, config, with_pooler=False)
    inputs = {"text": text_input()}
    encoded = tokenizer(inputs["text"])
    states = run_backbone(backbone, encoded, "sequence_output")
    embedding = pooler(states, encoded["attention_mask"])
    return keras.Model(inputs, {"embedding": embedding}, name="feature_extraction")


def build_text_classification(
    folder: str, config: dict[str, Any], max_length: int | None, text_pair: bool,
    allow_untrained_head: bool, id2label: dict[int, str] | None,
) -> keras.Model:
    labels = class_labels(id2label or config.get("id2label") or default_labels(config))
    tokenizer = build_tokenizer(folder, config, max_length)
    backbone, weights = build_backbone(folder, config, with_pooler=True)
    inputs = {"text": text_input()}
    if text_pair:
        inputs["text_pair"] = text_input("text_pair")
    encoded = tokenizer(inputs["text"], inputs.get("text_pair"))
    pooled = run_backbone(backbone, encoded, "pooled_output")
    rate = config.get("classifier_dropout")
    pooled = keras.layers.Dropout(
        config.get("hidden_dropout_prob", 0.1) if rate is None else rate, name="dropout"
    )(pooled)
    classifier = keras.layers.Dense(
        len(labels), name="classifier",
        kernel_initializer=keras.initializers.TruncatedNormal(
            stddev=config.get("initializer_range", 0.02)),
    )
    logits = classifier(pooled)
    load_classifier(classifier, weights, allow_untrained_head)
    multi_label = config.get("problem_type") == "multi_label_classification"
    probabilities = ClassProbabilities(multi_label, name="probabilities")(logits)
    outputs = {"probabilities": probabilities}
    outputs.update(LabelLookup(labels, name="label_lookup")(probabilities))
    return keras.Model(inputs, outputs, name="text_classification")


def default_labels(config: dict[str, Any]) -> dict[int, str]:
    """transformers' labels for a config without id2label: LABEL_0.. of num_labels (2)."""
    return {index: f"LABEL_{index}" for index in range(config.get("num_labels", 2))}


def class_labels(id2label: dict) -> list[str]:
    """Class names in logit order, from config.json's id2label (string keys)."""
    by_index = {int(index): str(label) for index, label in id2label.items()}
    if sorted(by_index) != list(range(len(by_index))) or not by_index:
        raise PipelineError(f"id2label must name classes 0..N-1, got {sorted(by_index)}")
    return [by_index[index] for index in range(len(by_index))]


def load_classifier(classifier, weights: SafetensorsWeights, allow_untrained_head: bool) -> None:
    if weights.has("classifier.weight") and weights.has("classifier.bias"):
        load_dense(classifier, weights, "classifier")
    elif not allow_untrained_head:
        raise ModelLoadError(
            f"{weights.path} has no weights for classifier.weight, classifier.bias, so its "
            "text-classification model would answer at random: fine-tune it first, or pass "
            "allow_untrained_head=True if you mean it (docs/pipelines.md, Untrained heads)"
        )


def sentence_bert_max_length(folder: str) -> int | None:
    """``max_seq_length`` from sentence_bert_config.json, which sentence-transformers uses."""
    path = os.path.join(folder, "sentence_bert_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file).get("max_seq_length")
