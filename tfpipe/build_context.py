"""What every task builder starts from: the checkpoint, its tokenizer and model, loaded on
demand and checked against each other."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
import tf_keras

from tfpipe.heads import SentencePooling, sentence_transformers_pooling
from tfpipe.model_config import checked_model_config
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer
from tfpipe.transformer import CLASSIFICATION_TASKS, TransformerLayer


class PipelineError(ValueError):
    """A pipeline cannot be built from the given task and options."""


class BuildContext:
    """Where the checkpoint and tokenizer come from; loads each piece on demand."""

    def __init__(
        self,
        checkpoint: str,
        tokenizer: str | os.PathLike | TokenizerLayer | None,
        max_length: int | None,
        allow_pickle: bool,
        chunking: dict[str, int | None] | None = None,
        allow_untrained_head: bool = False,
        pad_token: str | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.pad_token = pad_token
        self.chunking = chunking or {}
        self.tokenizer_source = checkpoint if tokenizer is None else tokenizer
        self.max_length = max_length
        self.allow_pickle = allow_pickle
        self.allow_untrained_head = allow_untrained_head
        if os.path.isfile(os.path.join(checkpoint, "config.json")):
            # Before anything is built: transformers also reads it, for the tokenizer too.
            self.model_config()

    def tokenizer(
        self,
        default_max_length: int | None = None,
        truncation: str | bool = True,
        **options: Any,
    ) -> TokenizerLayer:
        """The tokenizer, padding to the longest text like ``padding=True``; ``options`` are
        further TokenizerLayer options a task needs (offsets, windows), also applied to a
        given layer (a copy of it with them)."""
        if isinstance(self.tokenizer_source, TokenizerLayer):
            if not options:
                return self.tokenizer_source
            return TokenizerLayer.from_config({**self.tokenizer_source.get_config(), **options})
        return TokenizerLayer.from_pretrained(
            os.fspath(self.tokenizer_source),
            max_length=self.max_length or default_max_length,
            padding="longest",
            truncation=truncation,
            pad_token=self.pad_token,
            name="tokenizer",
            **options,
        )

    def transformer(
        self, task: str, tokenizer: TokenizerLayer, **config_overrides: Any
    ) -> TransformerLayer:
        """The model, checked to hold every sequence ``tokenizer`` can produce."""
        transformer = TransformerLayer.from_pretrained(
            self.checkpoint,
            task,
            allow_pickle=self.allow_pickle,
            allow_untrained_head=self.allow_untrained_head,
            name="transformer",
            **self.chunking,
            **self.pad_token_id_override(task, tokenizer),
            **config_overrides,
        )
        self.check_max_length(tokenizer, transformer.max_sequence_length)
        return transformer

    def check_max_length(self, tokenizer: TokenizerLayer, limit: int | None) -> None:
        """Refuse sequences longer than the model's positions: the export would pass its
        self-check and fail in serving on the first long request (as transformers fails)."""
        if limit is None or (tokenizer.max_length is not None and tokenizer.max_length <= limit):
            return
        if isinstance(self.tokenizer_source, TokenizerLayer):
            fix = f"build the TokenizerLayer with max_length={limit} or less"
        else:
            fix = f"pass max_length={limit} or less"
        raise PipelineError(
            f"tokens per text: {self.max_length_origin(tokenizer)}, but the model of "
            f"{self.checkpoint} embeds only {limit} positions, so longer texts would fail at "
            f"run time: {fix}"
        )

    def max_length_origin(self, tokenizer: TokenizerLayer) -> str:
        """The tokenizer's max_length and where it comes from, for errors."""
        if isinstance(self.tokenizer_source, TokenizerLayer):
            return f"the TokenizerLayer's max_length {tokenizer.max_length or 'None (unlimited)'}"
        if tokenizer.max_length is None:
            return "unlimited (the tokenizer sets no model_max_length)"
        if self.max_length is not None:
            return f"max_length={self.max_length}"
        if tokenizer.requested_max_length is None:
            return f"the tokenizer's model_max_length {tokenizer.max_length}"
        return f"sentence_bert_config.json's max_seq_length {tokenizer.max_length}"

    def pad_token_id_override(self, task: str, tokenizer: TokenizerLayer) -> dict[str, int]:
        """``pad_token_id`` for the model config when a pad token was chosen
        (``pad_token=``, here or on a given layer) and it has none.

        transformers' decoder classifiers (GPT-2, Mistral, ...) pool each text's last token
        that is not ``config.pad_token_id`` (the last column when it is None): HF users set
        ``model.config.pad_token_id = tokenizer.pad_token_id``. Another id would pool padding.
        """
        if tokenizer.pad_token is None or task not in CLASSIFICATION_TASKS:
            return {}
        pad_id = tokenizer.pad_token_id
        configured = self.model_config().get("pad_token_id")
        if configured is None:
            return {"pad_token_id": pad_id}
        if configured != pad_id:
            raise PipelineError(
                f"the pad token chosen is id {pad_id} but {self.checkpoint}'s config.json has "
                f"pad_token_id {configured}, by which decoder classifiers find each text's last "
                f"token: pass pad_token= the token of id {configured}, or set pad_token_id to "
                f"{pad_id} in config.json"
            )
        return {}

    def model_config(self) -> dict[str, Any]:
        return checked_model_config(self.checkpoint)

    def sentence_transformers_max_length(self) -> int | None:
        """``max_seq_length`` from sentence_bert_config.json, which sentence-transformers uses."""
        path = os.path.join(self.checkpoint, "sentence_bert_config.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as file:
            return json.load(file).get("max_seq_length")


def text_input(name: str = "text") -> tf_keras.Input:
    return tf_keras.Input(shape=(), dtype=tf.string, name=name)


def resolve_pooling(
    context: BuildContext, pooling: str | None, normalize: bool | None
) -> SentencePooling:
    """Pooling as asked, else as the checkpoint's sentence-transformers config, else mean."""
    settings = sentence_transformers_pooling(context.checkpoint) or {
        "mode": "mean",
        "normalize": False,
    }
    if pooling is not None:
        settings = {"mode": pooling, "normalize": False}
    if normalize is not None:
        settings["normalize"] = normalize
    return SentencePooling(**settings, name="pooling")
