"""Small tf-keras layers that turn transformer outputs into what an application serves.

Labels and candidate embeddings are fixed at build time and live in the layer config, so a
saved model needs no side files and TF Serving sees only constants.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tfpipe.pooling import (  # sentence_transformers_pooling: re-exported (build_context)
    checked_pooling_mode,
    l2_normalize,
    pool,
    sentence_transformers_pooling,  # noqa: F401
)
from tfpipe.tokenization.layer_inputs import check_text_batch
from tfpipe.unconverted import unconverted


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class ClassProbabilities(tf_keras.layers.Layer):
    """Logits to probabilities: softmax, or per-label sigmoid for multi-label checkpoints.

    Mirrors transformers' ``problem_type == "multi_label_classification"`` convention.
    """

    def __init__(self, multi_label: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multi_label = bool(multi_label)

    @unconverted
    def call(self, logits: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        return tf.sigmoid(logits) if self.multi_label else tf.nn.softmax(logits, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multi_label": self.multi_label}


def _checked_labels(labels: Sequence[str]) -> list[str]:
    labels = [str(label) for label in labels]
    if not labels:
        raise ValueError("at least one label is needed")
    return labels


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class LabelLookup(tf_keras.layers.Layer):
    """Probabilities ``[batch, num_labels]`` to the best label string and its score."""

    def __init__(self, labels: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = _checked_labels(labels)

    @unconverted
    def call(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        _check_label_count(probabilities, len(self.labels))
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(tf.constant(self.labels), best),
            "score": tf.reduce_max(probabilities, axis=-1),
        }

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "labels": list(self.labels)}


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class TopK(tf_keras.layers.Layer):
    """Probabilities to the ``k`` best labels and scores, best first."""

    def __init__(self, labels: Sequence[str], k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = _checked_labels(labels)
        if not 1 <= int(k) <= len(self.labels):
            raise ValueError(f"top_k must be between 1 and {len(self.labels)}, got {k}")
        self.k = int(k)

    @unconverted
    def call(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        _check_label_count(probabilities, len(self.labels))
        scores, indices = tf.math.top_k(probabilities, k=self.k)
        return {"top_labels": tf.gather(tf.constant(self.labels), indices), "top_scores": scores}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "labels": list(self.labels), "k": self.k}


def _check_label_count(probabilities: tf.Tensor, num_labels: int) -> None:
    width = probabilities.shape[-1]
    if width is not None and width != num_labels:
        raise ValueError(f"got {width} class scores for {num_labels} labels")


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class SentencePooling(tf_keras.layers.Layer):
    """Token states ``[batch, seq, hidden]`` to one vector per text, as sentence-transformers.

    ``mean`` averages the tokens the attention mask keeps, ``cls`` takes the first token,
    ``max`` takes the per-dimension maximum over kept tokens, ``mean_sqrt_len`` divides the
    sum by sqrt(token count); ``normalize`` then scales each vector to unit L2 norm.
    """

    def __init__(self, mode: str = "mean", normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = checked_pooling_mode(mode)
        self.normalize = bool(normalize)

    @classmethod
    def from_sentence_transformers(
        cls, checkpoint: str | os.PathLike, **kwargs: Any
    ) -> SentencePooling | None:
        """Pooling as a sentence-transformers checkpoint folder specifies, or ``None``."""
        settings = sentence_transformers_pooling(checkpoint)
        return None if settings is None else cls(**settings, **kwargs)

    @unconverted
    def call(self, hidden_states: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        return pool(hidden_states, attention_mask, self.mode, self.normalize)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "normalize": self.normalize}


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class CandidateSimilarity(tf_keras.layers.Layer):
    """Sentence embeddings to scaled cosine similarities with fixed candidate embeddings.

    ``logits[b, j] = scale * cos(embedding[b], candidates[j])``; a softmax over them is the
    embedding-model zero-shot classifier. ``scale`` is an inverse temperature: cosine
    similarities of one model sit in a narrow band, so 20 (temperature 0.05, the value
    sentence-transformers uses for contrastive training) spreads them into useful probabilities.
    """

    def __init__(
        self, candidate_embeddings: Sequence[Sequence[float]], scale: float = 20.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # A numpy array, not a list: tf-keras would wrap a list attribute for tracking.
        self.candidate_embeddings = np.asarray(candidate_embeddings, dtype=np.float32)
        if self.candidate_embeddings.ndim != 2 or not len(self.candidate_embeddings):
            raise ValueError("candidate embeddings must be a non-empty [candidates, hidden] matrix")
        self.scale = float(scale)

    @unconverted
    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        candidates = l2_normalize(tf.constant(self.candidate_embeddings))
        embeddings = l2_normalize(tf.cast(embeddings, tf.float32))
        return self.scale * tf.matmul(embeddings, candidates, transpose_b=True)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "candidate_embeddings": self.candidate_embeddings.tolist(),
            "scale": self.scale,
        }


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class CandidatePairs(tf_keras.layers.Layer):
    """Texts ``[batch]`` to (premise, hypothesis) pairs ``[batch * num_hypotheses]``.

    Row ``b * num_hypotheses + j`` pairs text ``b`` with hypothesis ``j``, the order
    transformers' zero-shot pipeline reshapes its logits in.
    """

    def __init__(self, hypotheses: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hypotheses = _checked_labels(hypotheses)

    @unconverted
    def call(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        texts = check_text_batch(texts, "text")
        count = len(self.hypotheses)
        premises = tf.repeat(texts, count, axis=0)
        hypotheses = tf.tile(tf.constant(self.hypotheses), tf.shape(texts)[:1])
        return {"premises": premises, "hypotheses": hypotheses}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hypotheses": list(self.hypotheses)}


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class EntailmentProbabilities(tf_keras.layers.Layer):
    """NLI logits ``[batch * num_candidates, classes]`` to zero-shot probabilities.

    Single-label: softmax of the entailment logits across candidates. Multi-label: for each
    candidate independently, softmax over (contradiction, entailment), entailment kept. Both
    as transformers' ``ZeroShotClassificationPipeline.postprocess``.
    """

    def __init__(
        self,
        num_candidates: int,
        entailment_id: int,
        contradiction_id: int,
        multi_label: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_candidates = int(num_candidates)
        self.entailment_id = int(entailment_id)
        self.contradiction_id = int(contradiction_id)
        self.multi_label = bool(multi_label)

    @unconverted
    def call(self, logits: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        per_candidate = tf.reshape(logits, [-1, self.num_candidates, tf.shape(logits)[-1]])
        entailment = per_candidate[:, :, self.entailment_id]
        if not self.multi_label:
            return tf.nn.softmax(entailment, axis=-1)
        contradiction = per_candidate[:, :, self.contradiction_id]
        return tf.sigmoid(entailment - contradiction)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_candidates": self.num_candidates,
            "entailment_id": self.entailment_id,
            "contradiction_id": self.contradiction_id,
            "multi_label": self.multi_label,
        }
