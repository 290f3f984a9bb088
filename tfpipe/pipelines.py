"""``tfpipe.pipeline``: strings in, probabilities or embeddings out, as one tf-keras Model.

Each pipeline is a functional model ``text -> TokenizerLayer -> TransformerLayer -> heads``.
Everything that depends only on the task options (labels, hypotheses, candidate embeddings)
is computed here, at build time, and baked into layer configs as constants.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import tf_keras

from tfpipe.build_context import BuildContext, PipelineError, resolve_pooling, text_input
from tfpipe.chunking import DEFAULT_MAX_CHUNK_TOKENS
from tfpipe.fill_mask import build_fill_mask
from tfpipe.heads import ClassProbabilities, LabelLookup, TopK
from tfpipe.question_answering import build_question_answering
from tfpipe.token_classification import build_token_classification
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer
from tfpipe.zero_shot import build_zero_shot_classification


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
      ``similarity_scale``, default 20, for sentence encoders);
    - ``token-classification`` (``ner``): ``entity``, ``score``, ``word``, ``start``, ``end``
      padded per batch and ``num_entities`` (options: ``aggregation_strategy`` in none/
      simple/first/average/max, ``ignore_labels``, default ["O"], ``stride`` for windows);
    - ``question-answering`` (inputs ``question`` and ``context``): ``answer``, ``score``,
      ``start``, ``end`` ``[batch, top_k]`` and ``num_answers`` (options as transformers':
      ``top_k``, ``doc_stride``, ``max_answer_len``, ``max_seq_len``, ``max_question_len``,
      ``handle_impossible_answer``, ``align_to_words``);
    - ``fill-mask``: ``token``, ``token_str``, ``score``, ``sequence`` for the first mask
      token's ``top_k`` best tokens (default 5), and ``num_masks``.

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


PIPELINE_BUILDERS: dict[str, Callable[..., tf_keras.Model]] = {
    "text-classification": build_text_classification,
    "feature-extraction": build_feature_extraction,
    "zero-shot-classification": build_zero_shot_classification,
    "token-classification": build_token_classification,
    "question-answering": build_question_answering,
    "fill-mask": build_fill_mask,
}
# transformers' TASK_ALIASES (transformers.pipelines, 4.54.1) naming a task above.
TASK_ALIASES: dict[str, str] = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
}
