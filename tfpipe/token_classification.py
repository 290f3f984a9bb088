"""The token-classification task (alias ``ner``): text in, entities out, as transformers'
``TokenClassificationPipeline`` lists them (tfpipe/token_entities.py computes them)."""

from __future__ import annotations

from collections.abc import Sequence

import tf_keras

from tfpipe.build_context import BuildContext, PipelineError, text_input
from tfpipe.token_entities import AGGREGATION_STRATEGIES, TokenEntities
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer

DEFAULT_IGNORE_LABELS = ("O",)


def build_token_classification(
    context: BuildContext,
    *,
    aggregation_strategy: str = "none",
    ignore_labels: Sequence[str] | None = None,
    stride: int | None = None,
) -> tf_keras.Model:
    """Entities of each text: per token (``none``), or grouped B-/I- spans of tokens
    (``simple``) or of words (``first``, ``average``, ``max``), without ``ignore_labels``.

    Without ``stride`` a text is cut at the model's length, as transformers cuts it; with it,
    the text is read in windows sharing ``stride`` tokens and their entities merged.
    """
    strategy = checked_strategy(aggregation_strategy)
    ignored = checked_ignore_labels(ignore_labels)
    tokenizer = windowed_tokenizer(context, stride, strategy)
    transformer = context.transformer("token-classification", tokenizer)
    unk_id = tokenizer.settings.get("unk_token_id")
    inputs = {"text": text_input()}
    encoded = tokenizer(inputs["text"])
    entities = TokenEntities(
        tokenizer.tokenizer_json,
        transformer.labels,
        aggregation_strategy=strategy,
        ignore_labels=ignored,
        # transformers' tokenizer.unk_token_id (-1: none, as for a bare tokenizer.json).
        unk_token_id=-1 if unk_id is None else unk_id,
        merge_windows=stride is not None,
        name="entities",
    )({**encoded, "text": inputs["text"], "logits": transformer(encoded)})
    return tf_keras.Model(inputs, entities, name="token_classification")


def checked_strategy(aggregation_strategy: str) -> str:
    """The strategy's name; transformers reads it case-insensitively."""
    strategy = str(aggregation_strategy).lower()
    if strategy not in AGGREGATION_STRATEGIES:
        raise PipelineError(
            f"aggregation_strategy must be one of {', '.join(AGGREGATION_STRATEGIES)}, "
            f"got {aggregation_strategy!r}"
        )
    return strategy


def checked_ignore_labels(ignore_labels: Sequence[str] | None) -> list[str]:
    if ignore_labels is None:
        return list(DEFAULT_IGNORE_LABELS)
    if isinstance(ignore_labels, str) or not all(isinstance(x, str) for x in ignore_labels):
        raise PipelineError(f"ignore_labels must be a list of label names, got {ignore_labels!r}")
    return list(ignore_labels)


def windowed_tokenizer(
    context: BuildContext, stride: int | None, strategy: str
) -> TokenizerLayer:
    """The tokenizer with offsets and special-tokens mask, and with ``stride`` every window
    of a long text; transformers' errors for a stride it refuses are raised here."""
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    if stride is None:
        return context.tokenizer(**options)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
        raise PipelineError(f"stride must be a non-negative int, got {stride!r}")
    if strategy == "none":
        raise PipelineError(
            "stride reads a long text in overlapping windows, whose entities only an "
            "aggregation_strategy other than 'none' can merge (transformers refuses it too): "
            "pass aggregation_strategy='simple', 'first', 'average' or 'max'"
        )
    try:
        tokenizer = context.tokenizer(
            **options, return_overflowing_tokens=True, stride=stride
        )
    except ValueError as error:
        raise PipelineError(f"stride={stride}: {error}") from None
    if tokenizer.max_length is not None and stride >= tokenizer.max_length:
        raise PipelineError(
            f"stride must be less than the tokens per text ({tokenizer.max_length}), "
            f"got {stride}"
        )
    return tokenizer
