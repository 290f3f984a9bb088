"""The model families `tfpipe.keras` builds: the registry of what it supports.

Each `model_type` names its backbone builder, its weights, its position limit, and its
sequence classifier's head as transformers builds it: the dense layers and dropouts after
the pooler's output (BERT, ALBERT) or the first token's state (DistilBERT, RoBERTa).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfpipe.keras import albert, bert, bert_weights, distilbert, gpt2, roberta
from tfpipe.model_config import ModelLoadError

TASKS = ("text-classification", "feature-extraction")


class PipelineError(ValueError):
    """A Keras 3 pipeline cannot be built from the given task and options."""


@dataclass(frozen=True)
class HeadDense:
    """A dense layer of a classifier head: the checkpoint's name for its weights, its
    activation, and whether it outputs the labels (else the hidden size)."""

    weights: str
    activation: str | None = None
    to_labels: bool = False


DROPOUT = "dropout"
POOLER_HEAD = (DROPOUT, HeadDense("classifier", to_labels=True))
DISTILBERT_HEAD = (HeadDense("pre_classifier", "relu"), DROPOUT,
                   HeadDense("classifier", to_labels=True))
ROBERTA_HEAD = (DROPOUT, HeadDense("classifier.dense", "tanh"), DROPOUT,
                HeadDense("classifier.out_proj", to_labels=True))


def config_value(key: str) -> Callable[[dict], int]:
    return lambda config: config[key]


@dataclass(frozen=True)
class Family:
    """How tfpipe.keras builds one model_type. `head_input` is the backbone output the head
    starts from (`pooled_output`, or `first_token` of the token states); its dropout rate
    is the first of `classifier_dropout` the config sets, else `default_dropout`."""

    arguments: Callable[[dict, str], dict]
    backbone: type
    load: Callable[..., None]
    weight_prefix: str
    positions: Callable[[dict], int]
    tasks: tuple[str, ...] = TASKS
    head_input: str = "pooled_output"
    head: tuple = POOLER_HEAD
    classifier_dropout: tuple[str, ...] = ("classifier_dropout", "hidden_dropout_prob")
    default_dropout: float = 0.1

    def dropout(self, config: dict[str, Any]) -> float:
        """The head's dropout rate, as transformers picks it (it acts only in training)."""
        rates = [config.get(key) for key in self.classifier_dropout]
        return float(next((rate for rate in rates if rate is not None), self.default_dropout))


ROBERTA = Family(roberta.backbone_arguments, roberta.HFRobertaBackbone, roberta.load_backbone,
                 roberta.WEIGHT_PREFIX, roberta.token_limit, head_input="first_token",
                 head=ROBERTA_HEAD)
FAMILIES = {
    "bert": Family(bert.backbone_arguments, bert.ConfiguredBertBackbone,
                   bert_weights.load_backbone, bert.WEIGHT_PREFIX,
                   config_value("max_position_embeddings")),
    "distilbert": Family(distilbert.backbone_arguments, distilbert.ConfiguredDistilBertBackbone,
                         distilbert.load_backbone, distilbert.WEIGHT_PREFIX,
                         config_value("max_position_embeddings"), head_input="first_token",
                         head=DISTILBERT_HEAD, classifier_dropout=("seq_classif_dropout",),
                         default_dropout=0.2),
    "albert": Family(albert.backbone_arguments, albert.ConfiguredAlbertBackbone,
                     albert.load_backbone, albert.WEIGHT_PREFIX,
                     config_value("max_position_embeddings"),
                     classifier_dropout=("classifier_dropout_prob",)),
    "roberta": ROBERTA,
    "xlm-roberta": ROBERTA,
    # A decoder: embeddings only (its classifiers pool the last token, not built here).
    "gpt2": Family(gpt2.backbone_arguments, gpt2.ConfiguredGPT2Backbone, gpt2.load_backbone,
                   gpt2.WEIGHT_PREFIX, config_value("n_positions"), ("feature-extraction",)),
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
