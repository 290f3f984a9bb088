"""What tfpipe does differently for some transformers TF model types, beyond calling them.

tfpipe traces a model once for every request, with the batch and sequence sizes unknown, and
without AutoGraph (tfpipe.unconverted). Most TF models trace so. Some compare tensors in a
Python ``if`` (DeBERTa's attention compares the query and key lengths, BART's decoder its
mask's), which fails in such a graph with OperatorNotAllowedInGraphError; AutoGraph turns
those branches into graph conditionals, so those models are called through it. Others need
more than text, and are refused by name. The lists are checked against every text model type
transformers' TF auto classes map (tests/test_model_types.py; docs/pipelines.md, Model types).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf
import tf_keras

from tfpipe.model_config import ModelLoadError

# Model types whose TF code branches in Python on a tensor's value: traced through AutoGraph.
AUTOGRAPH_MODEL_TYPES = frozenset({"bart", "deberta", "deberta-v2", "funnel", "longformer"})
# Model types whose outputs for a text change with the width it is padded to (Funnel pools
# pairs of positions): run on the whole batch, padded to its longest text as the HF flow pads.
WHOLE_BATCH_MODEL_TYPES = frozenset({"funnel"})
# Model types that need inputs a text pipeline does not have, and what they are.
NON_TEXT_MODEL_TYPES = {
    "layoutlmv3": "word bounding boxes and page images (LayoutLMv3)",
    "tapas": "a table (TAPAS's token types encode its rows and columns)",
}
# The inputs a text pipeline feeds a model.
TEXT_INPUT_NAMES = ("input_ids", "attention_mask")


def model_type_of(hf_model: tf_keras.Model) -> str:
    return str(getattr(hf_model.config, "model_type", ""))


def check_text_model(hf_model: tf_keras.Model) -> None:
    """A ModelLoadError unless ``hf_model`` answers from token ids and an attention mask: a
    model without a mask would read the padding of a batch as text."""
    model_type = model_type_of(hf_model)
    if model_type in NON_TEXT_MODEL_TYPES:
        raise ModelLoadError(
            f"{model_type} models need {NON_TEXT_MODEL_TYPES[model_type]}, not text alone: "
            "tfpipe's pipelines feed them token ids only"
        )
    missing = [name for name in TEXT_INPUT_NAMES if name not in hf_model.input_signature]
    if missing:
        raise ModelLoadError(
            f"{type(hf_model).__name__} takes no {' or '.join(missing)}, so tfpipe cannot feed "
            "it padded batches of text"
        )


def runs_whole_batches(hf_model: tf_keras.Model) -> bool:
    """Whether the model must see the whole batch at once, padded as the HF flow pads it."""
    return model_type_of(hf_model) in WHOLE_BATCH_MODEL_TYPES


def model_call(hf_model: tf_keras.Model) -> Callable[[Mapping[str, tf.Tensor], bool], Any]:
    """``hf_model``'s call on a feature dict, through AutoGraph where its code needs it."""

    def call(features: Mapping[str, tf.Tensor], training: bool) -> Any:
        return hf_model(features, training=training)

    if model_type_of(hf_model) in AUTOGRAPH_MODEL_TYPES:
        return tf.autograph.to_graph(call)
    return call
