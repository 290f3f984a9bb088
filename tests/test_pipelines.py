"""tfpipe.pipeline against the seed flow, sentence-transformers and HF's zero-shot pipeline."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from model_fixtures import (
    CLASSIFIER_LABELS,
    SENTENCES,
    classifier_checkpoint,
    classifier_pipeline,
    hf_tokenizer,
    hf_zero_shot,
    minilm_path,
    nli_checkpoint,
    run,
    seed_flow_probabilities,
)

from tfpipe.export.saved_model import find_tokenizer
from tfpipe.pipelines import PipelineError, pipeline
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer

SENTIMENT_TEXTS = [
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
]


def decoded(strings):
    return [value.decode("utf-8") for value in strings]


def test_text_classification_matches_the_seed_flow():
    outputs = run(classifier_pipeline(), SENTENCES)
    expected = seed_flow_probabilities(classifier_checkpoint(), SENTENCES)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    assert decoded(outputs["label"]) == [CLASSIFIER_LABELS[i] for i in expected.argmax(-1)]
    np.testing.assert_allclose(outputs["score"], expected.max(-1), atol=1e-5)


def test_text_pair_classification_matches_the_seed_flow():
    model = pipeline("text-classification", classifier_checkpoint(), text_pair=True, top_k=2)
    pairs = list(reversed(SENTENCES))
    outputs = run(model, SENTENCES, text_pair=pairs)
    expected = seed_flow_probabilities(classifier_checkpoint(), SENTENCES, pairs)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    best_two = np.argsort(-expected, axis=-1)[:, :2]
    assert outputs["top_labels"].astype(str).tolist() == [
        [CLASSIFIER_LABELS[i] for i in row] for row in best_two
    ]


@functools.cache
def minilm_embeddings():
    return pipeline("feature-extraction", minilm_path())


def sentence_transformers_embeddings(texts):
    """all-MiniLM-L6-v2 as sentence-transformers documents it: tokens (max 256) -> BERT ->
    attention-masked mean pooling -> L2 normalisation."""
    from transformers import TFAutoModel

    encoded = hf_tokenizer(minilm_path())(
        texts, padding=True, truncation=True, max_length=256, return_tensors="np"
    )
    token_embeddings = TFAutoModel.from_pretrained(str(minilm_path()))(
        dict(encoded)
    ).last_hidden_state.numpy()
    mask = encoded["attention_mask"][..., None].astype(np.float32)
    pooled = (token_embeddings * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_feature_extraction_matches_sentence_transformers_on_minilm():
    embeddings = run(minilm_embeddings(), SENTENCES)["embedding"]
    np.testing.assert_allclose(embeddings, sentence_transformers_embeddings(SENTENCES), atol=1e-5)
    assert embeddings.shape == (len(SENTENCES), 384)


@functools.cache
def minilm_sentiment():
    return pipeline(
        "zero-shot-classification",
        minilm_path(),
        candidate_labels=["positive", "negative"],
        tokenizer=find_tokenizer(minilm_embeddings()),
    )


def test_embedding_zero_shot_tells_sentiment_with_minilm():
    outputs = run(minilm_sentiment(), SENTIMENT_TEXTS)
    assert decoded(outputs["label"]) == ["positive", "negative"]
    assert outputs["probabilities"].shape == (2, 2)
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-6)


def test_embedding_zero_shot_is_softmax_of_scaled_cosine_similarities():
    outputs = run(minilm_sentiment(), SENTIMENT_TEXTS)
    texts = sentence_transformers_embeddings(SENTIMENT_TEXTS)
    labels = sentence_transformers_embeddings(["This is positive.", "This is negative."])
    logits = 20.0 * texts @ labels.T
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)


ZERO_SHOT_LABELS = ["politics", "sports", "cooking"]


@functools.cache
def nli_zero_shot(multi_label: bool):
    """The NLI zero-shot pipeline; the multi-label one reuses the other's tokenizer."""
    return pipeline(
        "zero-shot-classification",
        nli_checkpoint(),
        candidate_labels=ZERO_SHOT_LABELS,
        hypothesis_template="This text is about {}.",
        multi_label=multi_label,
        tokenizer=find_tokenizer(nli_zero_shot(False)) if multi_label else None,
    )


@pytest.mark.parametrize("multi_label", [False, True])
def test_nli_zero_shot_matches_the_transformers_pipeline(multi_label):
    labels = ZERO_SHOT_LABELS
    model = nli_zero_shot(multi_label)
    outputs = run(model, SENTENCES[:2])
    for text, probabilities, label in zip(
        SENTENCES[:2], outputs["probabilities"], decoded(outputs["label"]), strict=True
    ):
        reference = hf_zero_shot(nli_checkpoint())(
            text, labels, hypothesis_template="This text is about {}.", multi_label=multi_label
        )
        by_label = dict(zip(reference["labels"], reference["scores"], strict=True))
        np.testing.assert_allclose(probabilities, [by_label[name] for name in labels], atol=1e-5)
        assert label == reference["labels"][0]


def test_text_classification_trains_end_to_end_from_strings():
    tokenizer = find_tokenizer(classifier_pipeline())
    model = pipeline("text-classification", classifier_checkpoint(), tokenizer=tokenizer)
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"text": SENTENCES}, {"probabilities": [2, 0, 1, 1]})
    ).batch(2)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss={"probabilities": tf_keras.losses.SparseCategoricalCrossentropy()},
    )
    history = model.fit(dataset, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_pipeline_composes_and_survives_a_keras_save_round_trip(tmp_path):
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    outputs = classifier_pipeline()({"text": text})
    confidence = tf_keras.layers.Lambda(lambda p: 1.0 - p[:, 1], name="not_neutral")(
        outputs["probabilities"]
    )
    composed = tf_keras.Model({"text": text}, {**outputs, "not_neutral": confidence})
    path = tmp_path / "composed.keras"
    composed.save(path)
    reloaded = tf_keras.models.load_model(
        path, custom_objects={"TokenizerLayer": TokenizerLayer}, safe_mode=False
    )
    before, after = run(composed, SENTENCES), run(reloaded, SENTENCES)
    for name in before:
        if before[name].dtype == object:
            assert before[name].tolist() == after[name].tolist()
        else:
            np.testing.assert_allclose(after[name], before[name], atol=1e-6)


def test_unknown_task_is_a_clear_error():
    with pytest.raises(PipelineError, match="unknown task"):
        pipeline("summarization", classifier_checkpoint())


def test_unknown_option_is_a_clear_error():
    with pytest.raises(PipelineError, match="unknown feature-extraction options: top_k"):
        pipeline("feature-extraction", classifier_checkpoint(), top_k=2)


def test_zero_shot_needs_candidate_labels():
    with pytest.raises(PipelineError, match="candidate_labels"):
        pipeline("zero-shot-classification", nli_checkpoint())


def test_hypothesis_template_needs_a_placeholder():
    with pytest.raises(PipelineError, match="has no \\{\\}"):
        pipeline(
            "zero-shot-classification",
            nli_checkpoint(),
            candidate_labels=["a"],
            hypothesis_template="no placeholder",
        )


def test_multi_label_zero_shot_needs_an_nli_checkpoint():
    with pytest.raises(PipelineError, match="multi_label needs an NLI checkpoint"):
        pipeline(
            "zero-shot-classification", minilm_path(), candidate_labels=["a", "b"], multi_label=True
        )
