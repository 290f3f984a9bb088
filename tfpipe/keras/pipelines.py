"""`tfpipe.keras.pipeline`: strings in, class probabilities or embeddings out, as one Keras 3
functional model: `TokenizerLayer` -> keras-hub backbone (the families in families.py, built as
config.json says) -> heads. The weights are the checkpoint's model.safetensors (weights.py)."""

from __future__ import annotations

import json
import os
from typing import Any

import keras

from tfpipe.keras.bert_weights import load_dense
from tfpipe.keras.encoder import BackboneLayer
from tfpipe.keras.families import (
    DROPOUT,
    TASKS,
    Family,
    HeadDense,
    PipelineError,
    model_family,
)
from tfpipe.keras.heads import ClassProbabilities, LabelLookup, SentencePooling
from tfpipe.keras.tokenizer_layer import TokenizerLayer
from tfpipe.keras.weights import SafetensorsWeights
from tfpipe.model_config import ModelLoadError, checked_model_config
from tfpipe.pooling import sentence_transformers_pooling

TASK_ALIASES = {"sentiment-analysis": "text-classification"}
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
    """A Keras 3 model for ``task`` on the local checkpoint folder ``model`` (BERT,
    DistilBERT, ALBERT, RoBERTa, XLM-RoBERTa; GPT-2 for embeddings).

    ``text-classification``: inputs ``text`` (and ``text_pair`` with ``text_pair=True``),
    outputs ``probabilities``, ``label``, ``score``; a checkpoint without classifier weights
    is refused unless ``allow_untrained_head=True`` (then ``id2label`` names the classes).
    ``feature-extraction``: ``embedding``, pooled as ``pooling``/``normalize`` say, else as
    the checkpoint's sentence-transformers config, else mean.
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
    tokenizer = build_tokenizer(folder, family.positions(config), max_length, pad_token, task)
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
    denses = [step for step in family.head if isinstance(step, HeadDense)]
    trained_head = has_head(weights, [dense.weights for dense in denses], allow_untrained_head)
    pooler = family.head_input == "pooled_output"
    backbone = build_backbone(folder, config, family, weights, with_pooler=pooler)
    inputs = {"text": text_input()}
    if text_pair:
        inputs["text_pair"] = text_input("text_pair")
    encoded = tokenizer(inputs["text"], inputs.get("text_pair"))
    if pooler:
        x = run_backbone(backbone, encoded, "pooled_output")
    else:
        x = run_backbone(backbone, encoded, "sequence_output")[:, 0]
    initializer = keras.initializers.TruncatedNormal(stddev=config.get("initializer_range", 0.02))
    for index, step in enumerate(family.head):
        if step == DROPOUT:
            x = keras.layers.Dropout(family.dropout(config), name=f"dropout_{index}")(x)
            continue
        layer = keras.layers.Dense(
            len(labels) if step.to_labels else backbone.hidden_dim, step.activation,
            kernel_initializer=initializer, name=step.weights.replace(".", "_"))
        x = layer(x)
        if trained_head:
            load_dense(layer, weights, step.weights)
    multi_label = config.get("problem_type") == "multi_label_classification"
    probabilities = ClassProbabilities(multi_label, name="probabilities")(x)
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


def has_head(weights: SafetensorsWeights, head: list[str], allow_untrained_head: bool) -> bool:
    """Whether the checkpoint has the classifier head's weights; without them, refused before
    anything is built unless ``allow_untrained_head`` (the head then starts at random)."""
    names = [f"{layer}.{part}" for layer in head for part in ("weight", "bias")]
    if all(weights.has(name) for name in names):
        return True
    if not allow_untrained_head:
        raise ModelLoadError(
            f"{weights.path} has no weights for {', '.join(names)}, so its "
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
