"""The transformer body: a Hugging Face TF (tf-keras) model as a layer fed by the tokenizer dict.

Loading is offline and safe by construction: the weights file is picked by
``tfpipe.checkpoints``, remote code is never trusted and the hub is never contacted. It is
also complete: a model with weights the checkpoint lacks (a new head on a bare encoder,
randomly initialised on every load) is refused unless the caller opts in.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import tensorflow as tf
import tf_keras
import transformers

from tfpipe.checkpoints import weight_loading_options
from tfpipe.chunking import DEFAULT_MAX_CHUNK_TOKENS, checked_limit, run_in_chunks
from tfpipe.einsum_transposes import einsum_transposes
from tfpipe.model_config import ModelLoadError, checked_model_config
from tfpipe.model_types import check_text_model, model_call, runs_whole_batches
from tfpipe.packed_models import run_packed_model, supports_packing
from tfpipe.unconverted import unconverted

# Each pipeline task maps to the transformers auto class whose head it needs.
TASK_MODEL_CLASSES: dict[str, str] = {
    "text-classification": "TFAutoModelForSequenceClassification",
    "zero-shot-classification": "TFAutoModelForSequenceClassification",
    "feature-extraction": "TFAutoModel",
    "token-classification": "TFAutoModelForTokenClassification",
    "question-answering": "TFAutoModelForQuestionAnswering",
    "fill-mask": "TFAutoModelForMaskedLM",
}
CLASSIFICATION_TASKS = frozenset({"text-classification", "zero-shot-classification"})
# Tasks whose output has one row per token: ``[batch, sequence, width]``.
PER_TOKEN_TASKS = frozenset(
    {"feature-extraction", "token-classification", "question-answering", "fill-mask"}
)
MODEL_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Weights a task's output never reads: feature-extraction returns the last hidden state, so a
# pooler the checkpoint lacks (RoBERTa classifiers have none) changes nothing.
UNREAD_WEIGHTS = {"feature-extraction": re.compile(r"pooler")}
# How many missing weights an error names before it only counts the rest.
NAMED_MISSING_WEIGHTS = 4


# Encoder-decoder model types whose encoder alone embeds text (sentence-T5 uses T5's): their
# TFAutoModel also runs the decoder, which needs decoder inputs a text pipeline does not have.
ENCODER_MODEL_CLASSES: dict[str, str] = {"t5": "TFT5EncoderModel", "mt5": "TFMT5EncoderModel"}


def model_class_for_task(task: str, model_type: str | None = None) -> type:
    """The transformers TF class that provides ``task``'s head for ``model_type`` (config.json's):
    an auto class, or for feature-extraction on T5 and mT5 their encoder alone."""
    if task not in TASK_MODEL_CLASSES:
        raise ModelLoadError(
            f"unknown task {task!r}; expected one of {', '.join(sorted(TASK_MODEL_CLASSES))}"
        )
    if task == "feature-extraction" and model_type in ENCODER_MODEL_CLASSES:
        return getattr(transformers, ENCODER_MODEL_CLASSES[model_type])
    return getattr(transformers, TASK_MODEL_CLASSES[task])


def load_pretrained_model(
    path: str | os.PathLike,
    task: str,
    *,
    allow_pickle: bool = False,
    allow_untrained_head: bool = False,
    **config_overrides: Any,
) -> tf_keras.Model:
    """Load a checkpoint folder's TF model for ``task`` from local files only; refuse one with
    weights the checkpoint lacks unless ``allow_untrained_head``."""
    folder = os.fspath(path)
    model_class_for_task(task)
    if not os.path.isdir(folder):
        raise ModelLoadError(f"model path {folder} is not a checkpoint folder")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ModelLoadError(f"no config.json in {folder}: not a transformers checkpoint")
    options = weight_loading_options(folder, allow_pickle=allow_pickle)
    model_class = model_class_for_task(task, checked_model_config(folder).get("model_type"))
    model, loading_info = model_class.from_pretrained(
        folder,
        local_files_only=True,
        trust_remote_code=False,
        output_loading_info=True,
        **options,
        **config_overrides,
    )
    missing = untrained_weights(model, loading_info["missing_keys"], task)
    if missing and not allow_untrained_head:
        raise ModelLoadError(untrained_weights_message(folder, task, missing))
    return model


def untrained_weights(model: tf_keras.Model, missing_keys: list[str], task: str) -> list[str]:
    """The weights transformers reports missing from the checkpoint (and so initialised at
    random), less names of weightless layers (H5 loading lists a Dropout's auto-numbered
    name) and weights the task's output never reads."""
    weightless = {layer.name for layer in model.layers if not layer.weights}
    unread = UNREAD_WEIGHTS.get(task)
    return sorted(
        name
        for name in missing_keys
        if name not in weightless and not (unread and unread.search(name))
    )


def untrained_weights_message(folder: str, task: str, missing: list[str]) -> str:
    named = ", ".join(missing[:NAMED_MISSING_WEIGHTS])
    if len(missing) > NAMED_MISSING_WEIGHTS:
        named += f" and {len(missing) - NAMED_MISSING_WEIGHTS} more"
    return (
        f"{folder} has no weights for {named}, so its {task} model would answer at random, "
        "differently on every build (a new head on a bare encoder?): fine-tune it first "
        "(e.g. in transformers, then save_pretrained), or pass allow_untrained_head=True "
        "if you mean it (docs/pipelines.md, Untrained heads)"
    )


def position_limit(hf_model: tf_keras.Model) -> int | None:
    """The most tokens a sequence can have: the position embedding table's rows, less the
    padding_idx + 1 rows RoBERTa-style embeddings never use (their positions start after the
    padding index). None when positions are relative or rotary: there is no table to overrun."""
    config = hf_model.config
    rows = getattr(config, "max_position_embeddings", None)
    if (
        rows is None
        or not getattr(config, "position_biased_input", True)
        or getattr(config, "position_embedding_type", "absolute") == "rotary"
    ):
        return None
    padding_idx = getattr(hf_model.get_input_embeddings(), "padding_idx", None)
    return int(rows) - (0 if padding_idx is None else int(padding_idx) + 1)


def model_from_config(task: str, model_config: dict[str, Any]) -> tf_keras.Model:
    """A freshly initialised, built TF model with ``model_config``'s architecture."""
    config = transformers.AutoConfig.for_model(**model_config)
    model = model_class_for_task(task, config.model_type).from_config(config)
    model.build_in_name_scope()
    return model


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class TransformerLayer(tf_keras.layers.Layer):
    """A transformers TF model as a layer: tokenizer dict in, logits or hidden states out.

    The output is, per task: the logits ``[batch, num_labels]`` (classification tasks), the
    last hidden state ``[batch, sequence, hidden]`` (``feature-extraction``), per-token logits
    ``[batch, sequence, num_labels]`` (``token-classification``) or ``[batch, sequence,
    vocab_size]`` (``fill-mask``), or the start and end logits stacked as ``[batch, sequence,
    2]`` (``question-answering``).

    The model runs on length-sorted chunks of the batch of at most ``max_chunk_tokens``
    padded tokens and ``micro_batch_size`` rows (tfpipe.chunking), so one long text does not
    make every row of a mixed batch pay for its length; both None run the whole batch at
    once, as do models whose outputs depend on the padded width (tfpipe.model_types). A
    model that takes packed rows (tfpipe.packed_models) first has short rows put side by
    side (tfpipe.packing). Results are the whole batch's up to float rounding, except at
    padding positions of per-token outputs, which are zeros where the model did not run them.
    """

    # Whether rows may be packed; a subclass whose `_run` reads chunks row by row says no.
    packs_rows = True

    def __init__(
        self,
        task: str,
        model_config: dict[str, Any],
        *,
        hf_model: tf_keras.Model | None = None,
        micro_batch_size: int | None = None,
        max_chunk_tokens: int | None = DEFAULT_MAX_CHUNK_TOKENS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        model_class_for_task(task)
        micro_batch_size = checked_limit("micro_batch_size", micro_batch_size)
        max_chunk_tokens = checked_limit("max_chunk_tokens", max_chunk_tokens)
        self.task = task
        # A JSON string, not a dict: tf-keras would wrap a dict attribute for tracking.
        self._model_config_json = json.dumps(model_config, sort_keys=True)
        self.hf_model = hf_model if hf_model is not None else model_from_config(task, model_config)
        check_text_model(self.hf_model)
        self._call_model = model_call(self.hf_model)
        whole = runs_whole_batches(self.hf_model)
        self.micro_batch_size = None if whole else micro_batch_size
        self.max_chunk_tokens = None if whole else max_chunk_tokens
        self.model_input_names = [
            name for name in MODEL_INPUT_NAMES if name in self.hf_model.input_signature
        ]

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        task: str = "feature-extraction",
        *,
        allow_pickle: bool = False,
        allow_untrained_head: bool = False,
        name: str | None = None,
        micro_batch_size: int | None = None,
        max_chunk_tokens: int | None = DEFAULT_MAX_CHUNK_TOKENS,
        **config_overrides: Any,
    ) -> TransformerLayer:
        """Load ``path`` (a checkpoint folder) for ``task``.

        ``config_overrides`` (e.g. ``num_labels=3``, ``id2label=...``) go to the model config,
        which is how a new classification head is put on an encoder-only checkpoint. A model
        with weights the checkpoint lacks, such as that head, is a ModelLoadError naming them
        unless ``allow_untrained_head=True``: untrained, it would answer at random.
        """
        hf_model = load_pretrained_model(
            path,
            task,
            allow_pickle=allow_pickle,
            allow_untrained_head=allow_untrained_head,
            **config_overrides,
        )
        model_config = json.loads(hf_model.config.to_json_string(use_diff=False))
        return cls(
            task,
            model_config,
            hf_model=hf_model,
            name=name,
            micro_batch_size=micro_batch_size,
            max_chunk_tokens=max_chunk_tokens,
        )

    @property
    def config(self) -> transformers.PretrainedConfig:
        return self.hf_model.config

    @property
    def id2label(self) -> dict[int, str]:
        return {int(index): str(label) for index, label in self.config.id2label.items()}

    @property
    def labels(self) -> list[str]:
        """Class names in logit order."""
        id2label = self.id2label
        return [id2label[index] for index in range(len(id2label))]

    @property
    def is_multi_label(self) -> bool:
        return self.config.problem_type == "multi_label_classification"

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def output_width(self) -> int:
        """The size of the output's last axis."""
        if self.task == "feature-extraction":
            return self.hidden_size
        if self.task == "question-answering":
            return 2
        if self.task == "fill-mask":
            return int(self.config.vocab_size)
        return len(self.id2label)

    @property
    def per_token(self) -> bool:
        """Whether the output has one row per token, ``[batch, sequence, width]``."""
        return self.task in PER_TOKEN_TASKS

    @property
    def max_sequence_length(self) -> int | None:
        """The most tokens per sequence the model's position embeddings hold (None: no limit);
        a longer sequence fails at run time, as in transformers."""
        return position_limit(self.hf_model)

    @unconverted
    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        missing = {"input_ids", "attention_mask"} - set(inputs)
        if missing:
            raise ValueError(f"TransformerLayer needs tokenizer outputs {sorted(missing)}")
        features = {name: inputs[name] for name in self.model_input_names if name in inputs}
        return self._run_padding_empty_batches(features, training)

    def _run_padding_empty_batches(
        self, features: dict[str, tf.Tensor], training: bool
    ) -> tf.Tensor:
        """The model on the batch; an empty batch (or one of empty rows) gets one row and
        column of padding, cut off again after the model, since the attention kernels reject
        a [0, 0] batch. A cond around the model would do too, but it routes every weight
        through a switch: some two hundred extra graph nodes on every request."""
        shape = tf.shape(features["input_ids"])
        batch, width = shape[0], shape[1]
        missing = [[0, 1 - tf.minimum(batch, 1)], [0, 1 - tf.minimum(width, 1)]]
        padded = {name: tf.pad(value, missing) for name, value in features.items()}
        output = self._run_batch(padded, training)[:batch]
        return output[:, :width] if self.per_token else output

    def _run_batch(self, features: dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """The model on the whole batch, or chunk by chunk (tfpipe.chunking), on packed rows
        when the model takes them (tfpipe.packed_models)."""
        if self.micro_batch_size is None and self.max_chunk_tokens is None:
            return self._run(features, training)
        if self.packs_rows and supports_packing(self.hf_model):
            with einsum_transposes():
                return run_packed_model(
                    self.hf_model,
                    features,
                    training,
                    max_rows=self.micro_batch_size,
                    max_tokens=self.max_chunk_tokens,
                )
        per_token = self.per_token
        return run_in_chunks(
            lambda chunk: self._run(chunk, training),
            features,
            max_rows=self.micro_batch_size,
            max_tokens=self.max_chunk_tokens,
            per_token=per_token,
            element_shape=[-1, -1, self.output_width] if per_token else [-1, self.output_width],
            dtype=self.compute_dtype,
        )

    def _run(self, features: dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        with einsum_transposes():
            outputs = self._call_model(features, training)
        if self.task == "feature-extraction":
            return outputs.last_hidden_state
        if self.task == "question-answering":
            return tf.stack([outputs.start_logits, outputs.end_logits], axis=-1)
        return outputs.logits

    def get_config(self) -> dict[str, Any]:
        model_config = json.loads(self._model_config_json)
        return {
            **super().get_config(),
            "task": self.task,
            "model_config": model_config,
            "micro_batch_size": self.micro_batch_size,
            "max_chunk_tokens": self.max_chunk_tokens,
        }
