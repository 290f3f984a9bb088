"""``tfpipe.pipeline``: strings in, probabilities or embeddings out, as one tf-keras Model.

Each pipeline is a functional model ``text -> TokenizerLayer -> TransformerLayer -> heads``.
Everything that depends only on the task options (labels, hypotheses, candidate embeddings)
is computed here, at build time, and baked into layer configs as constants.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tfpipe.chunking import DEFAULT_MAX_CHUNK_TOKENS
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
from tfpipe.model_config import checked_model_config
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer
from tfpipe.transformer import CLASSIFICATION_TASKS, TransformerLayer

DEFAULT_HYPOTHESIS_TEMPLATE = "This example is {}."
# Sentence encoders separate labels better with a plainer hypothesis: on all-MiniLM-L6-v2,
# "This is positive." vs "This is negative." widens the sentiment margins over the NLI default.
EMBEDDING_HYPOTHESIS_TEMPLATE = "This is {}."
# Inverse temperature for embedding zero-shot: softmax(scale * cosine). 20 = 1 / 0.05.
DEFAULT_SIMILARITY_SCALE = 20.0


class PipelineError(ValueError):
    """A pipeline cannot be built from the given task and options."""


def pipeline(
    task: str,
    model: str | os.PathLike,
    *,
    max_length: int | None = None,
    tokenizer: str | os.PathLike | TokenizerLayer | None = None,
    allow_pickle: bool = False,
    allow_untrained_head: bool = False,
    micro_batch_size: int | None = None,
    max_chunk_tokens: int | None = DEFAULT_MAX_CHUNK_TOKENS,
    pad_token: str | None = None,
    **options: Any,
) -> tf_keras.Model:
    """Build a tf-keras Model for ``task`` from a local checkpoint folder ``model``.

    The model takes ``{"text": tf.string [batch]}`` (plus ``text_pair`` for pair
    classification) and returns a dict of outputs:

    - ``text-classification``: ``probabilities``, ``label``, ``score`` (options:
      ``text_pair=True``, ``top_k=K`` adding ``top_labels``/``top_scores``, and config
      overrides such as ``num_labels``/``id2label`` with ``allow_untrained_head=True`` to
      put a new head on an encoder);
    - ``feature-extraction``: ``embedding`` (options: ``pooling`` in mean/cls/max/
      mean_sqrt_len and ``normalize``; default: as the checkpoint's sentence-transformers
      config says, else mean pooling without normalisation);
    - ``zero-shot-classification``: ``probabilities``, ``label``, ``score`` over
      ``candidate_labels`` (options: ``hypothesis_template``, default "This example is {}."
      for NLI checkpoints and "This is {}." for sentence encoders; ``multi_label`` for NLI;
      ``similarity_scale``, default 20, for sentence encoders).

    ``max_length`` caps tokens per text (default: the checkpoint's limit, or the
    sentence-transformers ``max_seq_length`` for embeddings); a cap over the model's position
    embeddings is a PipelineError. ``tokenizer`` is another folder or tokenizer.json to
    tokenize with, or a built TokenizerLayer to reuse as is. ``allow_untrained_head=True``
    builds a model with weights the checkpoint lacks (a new head), which is otherwise refused.
    The model runs on length-sorted chunks of at most ``max_chunk_tokens`` padded tokens
    and ``micro_batch_size`` rows, each padded only to its own longest text (both None: the
    whole batch at once; see tfpipe.chunking). ``pad_token`` sets the
    tokenizer's pad token, as ``tokenizer.pad_token = tokenizer.eos_token`` does for GPT-2 or
    Llama checkpoints that have none. transformers' task aliases (``sentiment-analysis``) work.
    """
    task = TASK_ALIASES.get(task, task)
    if task not in PIPELINE_BUILDERS:
        raise PipelineError(
            f"unknown task {task!r}; expected one of "
            f"{', '.join(sorted([*PIPELINE_BUILDERS, *TASK_ALIASES]))}"
        )
    checkpoint = os.fspath(model)
    if not os.path.isdir(checkpoint):
        raise PipelineError(f"model {checkpoint} is not a checkpoint folder")
    builder = PIPELINE_BUILDERS[task]
    unknown = set(options) - accepted_options(builder)
    if unknown:
        raise PipelineError(f"unknown {task} options: {', '.join(sorted(unknown))}")
    if isinstance(tokenizer, TokenizerLayer) and max_length is not None:
        raise PipelineError(
            "max_length cannot apply to a built TokenizerLayer; set it on the layer"
        )
    if isinstance(tokenizer, TokenizerLayer) and pad_token is not None:
        raise PipelineError("pad_token cannot apply to a built TokenizerLayer; set it on the layer")
    context = BuildContext(
        checkpoint, tokenizer, max_length, allow_pickle,
        chunking={"micro_batch_size": micro_batch_size, "max_chunk_tokens": max_chunk_tokens},
        allow_untrained_head=allow_untrained_head, pad_token=pad_token,
    )
    return builder(context, **options)


def accepted_options(builder: Callable[..., tf_keras.Model]) -> set[str]:
    parameters = inspect.signature(builder).parameters
    options = {name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        options |= CONFIG_OVERRIDES
    return options


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
        self, default_max_length: int | None = None, truncation: str | bool = True
    ) -> TokenizerLayer:
        """The tokenizer, padding to the longest text like ``padding=True``."""
        if isinstance(self.tokenizer_source, TokenizerLayer):
            return self.tokenizer_source
        return TokenizerLayer.from_pretrained(
            os.fspath(self.tokenizer_source),
            max_length=self.max_length or default_max_length,
            padding="longest",
            truncation=truncation,
            pad_token=self.pad_token,
            name="tokenizer",
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


CONFIG_OVERRIDES = frozenset({"num_labels", "id2label", "label2id", "problem_type"})


def build_text_classification(
    context: BuildContext, *, text_pair: bool = False, top_k: int | None = None, **overrides: Any
) -> tf_keras.Model:
    """Softmax (or sigmoid) class probabilities with the best label and its score."""
    tokenizer = context.tokenizer()
    transformer = context.transformer("text-classification", tokenizer, **overrides)
    inputs = {"text": text_input()}
    if text_pair:
        inputs["text_pair"] = text_input("text_pair")
        encoded = tokenizer(inputs["text"], text_pair=inputs["text_pair"])
    else:
        encoded = tokenizer(inputs["text"])
    logits = transformer(encoded)
    probabilities = ClassProbabilities(transformer.is_multi_label, name="probabilities")(logits)
    outputs = {"probabilities": probabilities}
    outputs.update(LabelLookup(transformer.labels, name="label_lookup")(probabilities))
    if top_k is not None:
        outputs.update(TopK(transformer.labels, top_k, name="top_k")(probabilities))
    return tf_keras.Model(inputs, outputs, name="text_classification")


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


def build_feature_extraction(
    context: BuildContext, *, pooling: str | None = None, normalize: bool | None = None
) -> tf_keras.Model:
    """One pooled (optionally L2-normalised) embedding per text."""
    pooler = resolve_pooling(context, pooling, normalize)
    tokenizer = context.tokenizer(context.sentence_transformers_max_length())
    transformer = context.transformer("feature-extraction", tokenizer)
    inputs = {"text": text_input()}
    encoded = tokenizer(inputs["text"])
    embedding = pooler(transformer(encoded), encoded["attention_mask"])
    return tf_keras.Model(inputs, {"embedding": embedding}, name="feature_extraction")


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


PIPELINE_BUILDERS: dict[str, Callable[..., tf_keras.Model]] = {
    "text-classification": build_text_classification,
    "feature-extraction": build_feature_extraction,
    "zero-shot-classification": build_zero_shot_classification,
}
# transformers' TASK_ALIASES (transformers.pipelines, 4.54.1) naming a task above.
TASK_ALIASES: dict[str, str] = {"sentiment-analysis": "text-classification"}
