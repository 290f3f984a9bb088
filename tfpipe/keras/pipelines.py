"""`tfpipe.keras.pipeline`: strings in, class probabilities or embeddings out, as one Keras 3
functional model: `TokenizerLayer` -> keras-hub backbone (BERT, or GPT-2 for embeddings;
built as config.json says: bert.py, gpt2.py) -> heads. The weights are the checkpoint's
model.safetensors (weights.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from tfpipe.keras import bert, bert_weights, gpt2
from tfpipe.keras.encoder import BackboneLayer
from tfpipe.keras.heads import ClassProbabilities, LabelLookup, SentencePooling
from tfpipe.keras.tokenizer_layer import TokenizerLayer
from tfpipe.keras.weights import SafetensorsWeights
from tfpipe.model_config import ModelLoadError, checked_model_config
from tfpipe.pooling import sentence_transformers_pooling

TASK_ALIASES = {"sentiment-analysis": "text-classification"}
TASKS = ("text-classification", "feature-extraction")


class PipelineError(ValueError):
    """A Keras 3 pipeline cannot be built from the given task and options."""


@dataclass(frozen=True)
class Family:
    """How tfpipe.keras builds one model_type: its backbone, weights and position limit."""

    arguments: Callable[[dict, str], dict]
    backbone: type
    load: Callable[..., None]
    weight_prefix: str
    positions: str
    tasks: tuple[str, ...]


FAMILIES = {
    "bert": Family(bert.backbone_arguments, bert.ConfiguredBertBackbone,
                   bert_weights.load_backbone, bert.WEIGHT_PREFIX, "max_position_embeddings",
                   TASKS),
    # A decoder: embeddings only (its classifiers pool the last token, not built here).
    "gpt2": Family(gpt2.backbone_arguments, gpt2.ConfiguredGPT2Backbone, gpt2.load_backbone,
                   gpt2.WEIGHT_PREFIX, "n_positions", ("feature-extraction",)),
}


def model_family(config: dict[str, Any], folder: str, task: str) -> Family:
    """The checkpoint's family, refused by name when tfpipe.keras does not build it (for
    ``task``)."""
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type)
    if family is None:
        raise ModelLoadError(
            f"{folder}: model_type {model_type!r}; tfpipe.keras builds "
            f"{', '.join(FAMILIES)} (tfpipe.pipeline, tf-keras, builds every transformers family)"
        )
    if task not in family.tasks:
        raise PipelineError(f"tfpipe.keras builds {model_type} models for "
                            f"{', '.join(family.tasks)}, not {task}")
    return family


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
    pad_token: str | None = None,
) -> keras.Model:
    """A Keras 3 model for ``task`` on the local BERT checkpoint folder ``model``.

    ``text-classification``: inputs ``text`` (and ``text_pair`` with ``text_pair=True``),
    outputs ``probabilities``, ``label``, ``score``; a checkpoint without classifier weights
    is refused unless ``allow_untrained_head=True`` (then ``id2label`` names the classes).
    ``feature-extraction``: ``embedding``, pooled as ``pooling``/``normalize`` say, else as
    the checkpoint's sentence-transformers config, else mean; BERT and GPT-2 checkpoints.
    ``pad_token`` is the tokenizer's pad token for one without (GPT-2). The outputs equal
    ``tfpipe.pipeline``'s (tf-keras, transformers' TF model) within 1e-5.
    """
    task = TASK_ALIASES.get(task, task)
    if task not in TASKS:
        raise PipelineError(f"tfpipe.keras builds {', '.join(TASKS)}, not {task!r}")
    folder = os.fspath(model)
    if not os.path.isdir(folder):
        raise PipelineError(f"model {folder} is not a checkpoint folder")
    config = checked_model_config(folder)
    family = model_family(config, folder, task)
    tokenizer = build_tokenizer(folder, config[family.positions], max_length, pad_token, task)
    if task == "feature-extraction":
        if text_pair or allow_untrained_head or id2label is not None:
            raise PipelineError("feature-extraction takes pooling and normalize options only")
        return build_feature_extraction(folder, config, family, tokenizer, pooling, normalize)
    if pooling is not None or normalize is not None:
        raise PipelineError("pooling and normalize are feature-extraction options")
    return build_text_classification(
        folder, config, family, tokenizer, text_pair, allow_untrained_head, id2label
    )


def build_tokenizer(
    folder: str, limit: int, max_length: int | None, pad_token: str | None, task: str
) -> TokenizerLayer:
    """The checkpoint's tokenizer (for embeddings at sentence-transformers' max_seq_length
    by default), refused when it can make sequences longer than the model's ``limit``
    positions: they would fail at run time, in transformers too."""
    if max_length is None and task == "feature-extraction":
        max_length = sentence_bert_max_length(folder)
    tokenizer = TokenizerLayer.from_pretrained(
        folder, max_length=max_length, pad_token=pad_token, name="tokenizer"
    )
    if tokenizer.max_length is None or tokenizer.max_length > limit:
        raise PipelineError(
            f"tokens per text: {tokenizer.max_length or 'unlimited'}, but the model of {folder} "
            f"embeds only {limit} positions: pass max_length={limit} or less"
        )
    return tokenizer


def build_backbone(
    folder: str, config: dict[str, Any], family: Family, weights: SafetensorsWeights,
    with_pooler: bool,
):
    """The backbone with every weight from the checkpoint."""
    backbone = family.backbone(**family.arguments(config, folder), name="backbone")
    family.load(backbone, weights, with_pooler)
    return backbone


def run_backbone(backbone, encoded: dict, output: str):
    """The backbone's ``output`` for the tokenizer's outputs (encoder.py)."""
    layer = BackboneLayer(backbone, output, name=output.replace("_output", "_encoder"))
    return layer(encoded["input_ids"], encoded["attention_mask"], encoded.get("token_type_ids"))


def text_input(name: str = "text"):
    return keras.Input(shape=(), dtype="string", name=name)


def build_feature_extraction(
    folder: str, config: dict[str, Any], family: Family, tokenizer: TokenizerLayer,
    pooling: str | None, normalize: bool | None,
) -> keras.Model:
    settings = sentence_transformers_pooling(folder) or {"mode": "mean", "normalize": False}
    if pooling is not None:
        settings = {"mode": pooling, "normalize": False}
    if normalize is not None:
        settings["normalize"] = normalize
    pooler = SentencePooling(**settings, name="pooling")
    weights = SafetensorsWeights(folder, family.weight_prefix)
    backbone = build_backbone(folder, config, family, weights, with_pooler=False)
    inputs = {"text": text_input()}
    encoded = tokenizer(inputs["text"])
    states = run_backbone(backbone, encoded, "sequence_output")
    embedding = pooler(states, encoded["attention_mask"])
    return keras.Model(inputs, {"embedding": embedding}, name="feature_extraction")


def build_text_classification(
    folder: str, config: dict[str, Any], family: Family, tokenizer: TokenizerLayer,
    text_pair: bool, allow_untrained_head: bool, id2label: dict[int, str] | None,
) -> keras.Model:
    labels = class_labels(id2label or config.get("id2label") or default_labels(config))
    if config.get("problem_type") == "regression":
        raise ModelLoadError(f"{folder}: problem_type 'regression' is not built by tfpipe.keras")
    weights = SafetensorsWeights(folder, family.weight_prefix)
    trained_head = has_classifier(weights, allow_untrained_head)
    backbone = build_backbone(folder, config, family, weights, with_pooler=True)
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
    if trained_head:
        bert_weights.load_dense(classifier, weights, "classifier")
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


def has_classifier(weights: SafetensorsWeights, allow_untrained_head: bool) -> bool:
    """Whether the checkpoint has classifier weights; without them, refused before anything
    is built unless ``allow_untrained_head`` (the head then starts at random)."""
    if weights.has("classifier.weight") and weights.has("classifier.bias"):
        return True
    if not allow_untrained_head:
        raise ModelLoadError(
            f"{weights.path} has no weights for classifier.weight, classifier.bias, so its "
            "text-classification model would answer at random: fine-tune it first, or pass "
            "allow_untrained_head=True if you mean it (docs/pipelines.md, Untrained heads)"
        )
    return False


def sentence_bert_max_length(folder: str) -> int | None:
    """``max_seq_length`` from sentence_bert_config.json, which sentence-transformers uses."""
    path = os.path.join(folder, "sentence_bert_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file).get("max_seq_length")
