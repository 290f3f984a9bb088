"""The zero-shot-classification task: NLI entailment over (text, hypothesis) pairs, or
embedding similarity for sentence encoders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfpipe.build_context import BuildContext, PipelineError, resolve_pooling, text_input
from tfpipe.heads import (
    CandidatePairs,
    CandidateSimilarity,
    ClassProbabilities,
    EntailmentProbabilities,
    LabelLookup,
)

DEFAULT_HYPOTHESIS_TEMPLATE = "This example is {}."
# Sentence encoders separate labels better with a plainer hypothesis: on all-MiniLM-L6-v2,
# "This is positive." vs "This is negative." widens the sentiment margins over the NLI default.
EMBEDDING_HYPOTHESIS_TEMPLATE = "This is {}."
# Inverse temperature for embedding zero-shot: softmax(scale * cosine). 20 = 1 / 0.05.
DEFAULT_SIMILARITY_SCALE = 20.0


def entailment_id(label2id: dict[str, int]) -> int | None:
    """The entailment class, found as transformers' zero-shot pipeline finds it."""
    for label, index in label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return None


def build_zero_shot_classification(
    context: BuildContext,
    *,
    candidate_labels: Sequence[str] | None = None,
    hypothesis_template: str | None = None,
    multi_label: bool = False,
    similarity_scale: float = DEFAULT_SIMILARITY_SCALE,
    pooling: str | None = None,
    normalize: bool | None = None,
) -> tf_keras.Model:
    """Probabilities over ``candidate_labels``: NLI entailment, or embedding similarity.

    A checkpoint with an ``entailment`` label scores (text, hypothesis) pairs like
    transformers' zero-shot pipeline; any other checkpoint is used as a sentence encoder and
    scores ``softmax(similarity_scale * cos(text, hypothesis))``.
    """
    labels = [str(label) for label in candidate_labels or []]
    if not labels or any(not label for label in labels):
        raise PipelineError("zero-shot-classification needs non-empty candidate_labels")
    if len(set(labels)) != len(labels):
        raise PipelineError(f"candidate_labels has duplicates: {labels}")
    nli_entailment_id = entailment_id(context.model_config().get("label2id") or {})
    default_template = (
        EMBEDDING_HYPOTHESIS_TEMPLATE if nli_entailment_id is None else DEFAULT_HYPOTHESIS_TEMPLATE
    )
    template = hypothesis_template or default_template
    if "{}" not in template:
        raise PipelineError(f"hypothesis_template {template!r} has no {{}} for the label")
    hypotheses = [template.format(label) for label in labels]
    if nli_entailment_id is None:
        if multi_label:
            raise PipelineError(
                "multi_label needs an NLI checkpoint (an 'entailment' label); "
                f"{context.checkpoint} is used as a sentence encoder"
            )
        return _embedding_zero_shot(
            context, labels, hypotheses, similarity_scale, pooling, normalize
        )
    # transformers treats a single candidate as multi-label: entailment vs contradiction.
    multi_label = multi_label or len(labels) == 1
    return _nli_zero_shot(context, labels, hypotheses, nli_entailment_id, multi_label)


def _nli_zero_shot(
    context: BuildContext,
    labels: list[str],
    hypotheses: list[str],
    nli_entailment_id: int,
    multi_label: bool,
) -> tf_keras.Model:
    # transformers truncates only the premise: the hypothesis must survive intact.
    tokenizer = context.tokenizer(truncation="only_first")
    transformer = context.transformer("zero-shot-classification", tokenizer)
    # As transformers: the first class is contradiction, unless entailment is, then the last.
    contradiction_id = transformer.config.num_labels - 1 if nli_entailment_id == 0 else 0
    inputs = {"text": text_input()}
    pairs = CandidatePairs(hypotheses, name="candidate_pairs")(inputs["text"])
    encoded = tokenizer(pairs["premises"], text_pair=pairs["hypotheses"])
    probabilities = EntailmentProbabilities(
        len(labels), nli_entailment_id, contradiction_id, multi_label, name="probabilities"
    )(transformer(encoded))
    outputs = {"probabilities": probabilities}
    outputs.update(LabelLookup(labels, name="label_lookup")(probabilities))
    return tf_keras.Model(inputs, outputs, name="zero_shot_classification")


def _embedding_zero_shot(
    context: BuildContext,
    labels: list[str],
    hypotheses: list[str],
    scale: float,
    pooling: str | None,
    normalize: bool | None,
) -> tf_keras.Model:
    pooler = resolve_pooling(context, pooling, normalize)
    tokenizer = context.tokenizer(context.sentence_transformers_max_length())
    transformer = context.transformer("feature-extraction", tokenizer)

    def embed(texts: tf.Tensor) -> tf.Tensor:
        encoded = tokenizer(texts)
        return pooler(transformer(encoded), encoded["attention_mask"])

    hypothesis_embeddings = np.asarray(embed(tf.constant(hypotheses)))
    inputs = {"text": text_input()}
    similarities = CandidateSimilarity(hypothesis_embeddings, scale, name="candidate_similarity")(
        embed(inputs["text"])
    )
    probabilities = ClassProbabilities(name="probabilities")(similarities)
    outputs = {"probabilities": probabilities}
    outputs.update(LabelLookup(labels, name="label_lookup")(probabilities))
    return tf_keras.Model(inputs, outputs, name="zero_shot_classification")
