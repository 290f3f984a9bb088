"""`tfpipe.keras.TokenizerLayer`: the compiled Hugging Face tokenizer as a Keras 3 layer.

The same computation as the tf-keras `tfpipe.TokenizerLayer` (both derive from
`TokenizerCore` and share one compiled tokenizer per tokenizer.json), on a Keras 3 base
class, so it works on `keras.Input(shape=(), dtype="string")` in functional models, in
`tf.data` pipelines, in `.keras` files and in `model.export`. TensorFlow backend only: the
tokenizer is TensorFlow ops.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfpipe.tokenization.tokenizer_core import TokenizerCore


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class TokenizerLayer(TokenizerCore, keras.layers.Layer):
    """Strings in, the HF tokenizer's ids and masks out (core TF ops only).

    Build with `from_pretrained(path, **options)`; the options, outputs and results are
    those of `tfpipe.TokenizerLayer` (docs/pipelines.md, "The tokenizer layer").
    """

    def __init__(self, tokenizer_json: str, settings: dict, **options) -> None:
        check_backend()
        self._init_layer(super().__init__, tokenizer_json, settings, options)

    @classmethod
    def from_config(cls, config: dict) -> TokenizerLayer:
        """The layer of `get_config`; errors propagate as raised."""
        return cls(**config)

    def build(self, input_shape=None) -> None:
        """Nothing to build: the compiled tokenizer holds tables, no weights."""
        self.built = True

    def call(self, text, text_pair=None) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        return self.tokenize(text, text_pair)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.tokenizer_config()}


def check_backend() -> None:
    """The layer is TensorFlow ops: refuse another Keras backend by name."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"tfpipe.keras needs the TensorFlow backend of Keras 3, not "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before importing keras"
        )
