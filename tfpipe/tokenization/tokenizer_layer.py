"""`TokenizerLayer`: a checkpoint's Hugging Face fast tokenizer as a tf-keras layer.

`layer(texts)` returns what `hf_tokenizer(texts, padding=..., truncation=...,
max_length=...)` returns — input_ids, attention_mask and, when the checkpoint's tokenizer
returns them, token_type_ids — computed with core TensorFlow ops only, so the layer can be
saved in a SavedModel and served by stock TF Serving. The computation is `TokenizerCore`'s
(tokenizer_core.py), shared with the Keras 3 layer `tfpipe.keras.TokenizerLayer`.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from tfpipe.tokenization.tokenizer_core import TokenizerCore
from tfpipe.unconverted import unconverted


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class TokenizerLayer(TokenizerCore, tf_keras.layers.Layer):
    """Strings in, the HF tokenizer's ids and masks out (core TF ops only).

    Build with `from_pretrained`; the constructor takes the tokenizer.json text and settings
    so `get_config`/`from_config` can rebuild the layer without the original files. Options
    are `TokenizerCore._configure`'s.
    """

    def __init__(self, tokenizer_json: str, settings: dict, **options) -> None:
        self._init_layer(super().__init__, tokenizer_json, settings, options)

    @classmethod
    def from_config(cls, config: dict) -> TokenizerLayer:
        """The layer of `get_config`; errors propagate as raised, not re-raised by tf-keras
        as a TypeError quoting the whole config (the tokenizer.json text)."""
        return cls(**config)

    @unconverted
    def call(self, text, text_pair=None) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        return self.tokenize(text, text_pair)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.tokenizer_config()}

