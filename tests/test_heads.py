"""Heads: probabilities, labels, pooling and zero-shot scoring against numpy references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import minilm_path

from tfpipe.heads import (
    CandidatePairs,
    CandidateSimilarity,
    ClassProbabilities,
    EntailmentProbabilities,
    LabelLookup,
    SentencePooling,
    TopK,
    sentence_transformers_pooling,
)

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(4, 3)).astype(np.float32)
HIDDEN = RNG.normal(size=(3, 5, 8)).astype(np.float32)
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int32)


def softmax(values, axis=-1):
    exp = np.exp(values - values.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def round_trip(layer):
    return type(layer).from_config(json.loads(json.dumps(layer.get_config())))


def test_probabilities_are_softmax_for_single_label_checkpoints():
    head = round_trip(ClassProbabilities())
    np.testing.assert_allclose(head(LOGITS).numpy(), softmax(LOGITS), atol=1e-6)


def test_probabilities_are_sigmoid_for_multi_label_checkpoints():
    head = round_trip(ClassProbabilities(multi_label=True))
    np.testing.assert_allclose(head(LOGITS).numpy(), 1 / (1 + np.exp(-LOGITS)), atol=1e-6)


def test_label_lookup_returns_the_argmax_label_and_its_score():
    labels = ["a", "b", "c"]
    probabilities = softmax(LOGITS)
    outputs = round_trip(LabelLookup(labels))(probabilities)
    expected = [labels[index] for index in probabilities.argmax(-1)]
    assert [label.decode() for label in outputs["label"].numpy()] == expected
    np.testing.assert_allclose(outputs["score"].numpy(), probabilities.max(-1))


def test_label_lookup_rejects_a_label_count_mismatch():
    with pytest.raises(ValueError, match="3 class scores for 2 labels"):
        LabelLookup(["a", "b"])(softmax(LOGITS))


def test_top_k_returns_the_best_labels_first():
    labels = ["a", "b", "c"]
    probabilities = softmax(LOGITS)
    outputs = round_trip(TopK(labels, 2))(probabilities)
    order = np.argsort(-probabilities, axis=-1)[:, :2]
    expected = [[labels[index] for index in row] for row in order]
    assert outputs["top_labels"].numpy().astype(str).tolist() == expected
    np.testing.assert_allclose(
        outputs["top_scores"].numpy(), np.take_along_axis(probabilities, order, -1)
    )


def test_top_k_must_fit_the_labels():
    with pytest.raises(ValueError, match="top_k must be between 1 and 2"):
        TopK(["a", "b"], 3)


def sentence_transformers_pool(hidden, mask, mode):
    """sentence-transformers' Pooling.forward, transcribed to numpy."""
    expanded = mask[:, :, None].astype(np.float32)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return np.where(expanded > 0, hidden, -1e9).max(axis=1)
    summed = (hidden * expanded).sum(axis=1)
    counts = np.clip(expanded.sum(axis=1), 1e-9, None)
    return summed / (counts if mode == "mean" else np.sqrt(counts))


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len"])
def test_pooling_matches_sentence_transformers(mode):
    pooled = round_trip(SentencePooling(mode))(HIDDEN, MASK).numpy()
    np.testing.assert_allclose(pooled, sentence_transformers_pool(HIDDEN, MASK, mode), atol=1e-5)


def test_pooling_normalizes_to_unit_length():
    pooled = SentencePooling("mean", normalize=True)(HIDDEN, MASK).numpy()
    reference = sentence_transformers_pool(HIDDEN, MASK, "mean")
    reference /= np.linalg.norm(reference, axis=-1, keepdims=True)
    np.testing.assert_allclose(pooled, reference, atol=1e-6)


def test_pooling_is_read_from_the_sentence_transformers_config():
    assert sentence_transformers_pooling(minilm_path()) == {"mode": "mean", "normalize": True}
    pooling = SentencePooling.from_sentence_transformers(minilm_path())
    assert (pooling.mode, pooling.normalize) == ("mean", True)


def test_plain_checkpoints_have_no_sentence_transformers_pooling(tmp_path):
    assert sentence_transformers_pooling(tmp_path) is None


def test_pooling_with_several_modes_is_refused(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    flags = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(flags))
    with pytest.raises(ValueError, match="exactly one"):
        sentence_transformers_pooling(tmp_path)


def test_candidate_similarity_is_scaled_cosine():
    candidates = RNG.normal(size=(2, 8)).astype(np.float32)
    embeddings = RNG.normal(size=(3, 8)).astype(np.float32)
    logits = round_trip(CandidateSimilarity(candidates, scale=20.0))(embeddings).numpy()
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(logits, 20.0 * unit(embeddings) @ unit(candidates).T, atol=1e-4)


def test_candidate_pairs_follow_transformers_order():
    pairs = round_trip(CandidatePairs(["h1", "h2"]))(tf.constant(["t1", "t2"]))
    assert pairs["premises"].numpy().astype(str).tolist() == ["t1", "t1", "t2", "t2"]
    assert pairs["hypotheses"].numpy().astype(str).tolist() == ["h1", "h2", "h1", "h2"]


def transformers_zero_shot_scores(logits, num_candidates, entailment_id, multi_label):
    """ZeroShotClassificationPipeline.postprocess's arithmetic, in numpy."""
    reshaped = logits.reshape((-1, num_candidates, logits.shape[-1]))
    if multi_label:
        contradiction_id = -1 if entailment_id == 0 else 0
        return softmax(reshaped[..., [contradiction_id, entailment_id]])[..., 1]
    return softmax(reshaped[..., entailment_id])


@pytest.mark.parametrize("entailment_id", [0, 2])
@pytest.mark.parametrize("multi_label", [False, True])
def test_entailment_probabilities_follow_transformers(entailment_id, multi_label):
    logits = RNG.normal(size=(6, 3)).astype(np.float32)
    contradiction_id = 2 if entailment_id == 0 else 0
    head = EntailmentProbabilities(2, entailment_id, contradiction_id, multi_label)
    expected = transformers_zero_shot_scores(logits, 2, entailment_id, multi_label)
    np.testing.assert_allclose(round_trip(head)(logits).numpy(), expected, atol=1e-6)
