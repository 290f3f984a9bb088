"""Keras 3 heads of `tfpipe.keras` pipelines: class probabilities, the best label, and
sentence pooling, as the tf-keras heads of `tfpipe.heads` compute them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfpipe.pooling import checked_pooling_mode, pool


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class ClassProbabilities(keras.layers.Layer):
    """Logits to probabilities: softmax, or per-label sigmoid for multi-label checkpoints."""

    def __init__(self, multi_label: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multi_label = bool(multi_label)

    def call(self, logits):
        logits = tf.cast(logits, tf.float32)
        return tf.sigmoid(logits) if self.multi_label else tf.nn.softmax(logits, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multi_label": self.multi_label}


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class LabelLookup(keras.layers.Layer):
    """Probabilities ``[batch, num_labels]`` to the best label string and its score."""

    def __init__(self, labels: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = [str(label) for label in labels]
        if not self.labels:
            raise ValueError("at least one label is needed")

    def call(self, probabilities):
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(tf.constant(self.labels), best),
            "score": tf.reduce_max(probabilities, axis=-1),
        }

    def compute_output_spec(self, probabilities):
        batch = probabilities.shape[:1]
        return {
            "label": keras.KerasTensor(batch, dtype="string"),
            "score": keras.KerasTensor(batch, dtype="float32"),
        }

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "labels": list(self.labels)}


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class SentencePooling(keras.layers.Layer):
    """Token states and attention mask to one vector per text, as sentence-transformers
    (tfpipe.pooling)."""

    def __init__(self, mode: str = "mean", normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = checked_pooling_mode(mode)
        self.normalize = bool(normalize)

    def call(self, hidden_states, attention_mask):
        return pool(hidden_states, attention_mask, self.mode, self.normalize)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "normalize": self.normalize}
