"""The question-answering task: transformers' ``QuestionAnsweringPipeline`` as one graph.

The context is cut into overlapping windows, each the question then a part of the context,
as transformers' preprocess tokenizes it; the model scores every window; answer_spans.py
picks each window's best spans and merges them into each question's top k answers.
"""

from __future__ import annotations

import tf_keras

from tfpipe.answer_spans import RankedAnswers, WindowCandidates
from tfpipe.build_context import BuildContext, PipelineError, text_input
from tfpipe.tokenization.checkpoint import NO_LIMIT
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer

# transformers' preprocess: windows of at most 384 tokens, overlapping by up to 128.
LONGEST_DEFAULT_WINDOW = 384
LONGEST_DEFAULT_STRIDE = 128


def build_question_answering(
    context: BuildContext,
    *,
    top_k: int = 1,
    doc_stride: int | None = None,
    max_answer_len: int = 15,
    max_seq_len: int | None = None,
    max_question_len: int = 64,
    handle_impossible_answer: bool = False,
    align_to_words: bool = True,
) -> tf_keras.Model:
    """``question`` + ``context`` in; ``answer``, ``score``, ``start``, ``end`` ``[batch,
    top_k]`` and ``num_answers`` ``[batch]`` out, as transformers' pipeline answers.

    ``max_question_len`` is accepted and unused (unchecked), as transformers' fast-tokenizer
    path does.
    """
    check_positive(top_k=top_k, max_answer_len=max_answer_len)
    if context.max_length is not None:
        raise PipelineError("question-answering takes max_seq_len, not max_length")
    probe = context.tokenizer()
    if probe.settings["padding_side"] != "right":
        raise PipelineError(
            "question-answering needs a tokenizer padding on the right (the question first); "
            f"{context.checkpoint}'s pads on the {probe.settings['padding_side']}"
        )
    max_seq_len, doc_stride = window_sizes(probe, max_seq_len, doc_stride)
    tokenizer = windowing_tokenizer(context, max_seq_len, doc_stride)
    transformer = context.transformer("question-answering", tokenizer)
    inputs = {"question": text_input("question"), "context": text_input("context")}
    encoded = tokenizer(inputs["question"], text_pair=inputs["context"])
    candidates = WindowCandidates(
        cls_token_id=tokenizer.settings.get("cls_token_id"),
        max_answer_len=max_answer_len,
        # transformers' postprocess: word alignment may merge spans, so it takes more.
        candidates=top_k * 2 + 10 if align_to_words else top_k,
        align_to_words=align_to_words,
        name="window_candidates",
    )(transformer(encoded), encoded)
    outputs = RankedAnswers(top_k, handle_impossible_answer, name="ranked_answers")(
        inputs["question"], inputs["context"], encoded["overflow_to_sample_mapping"], candidates
    )
    return tf_keras.Model(inputs, outputs, name="question_answering")


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PipelineError(f"{name} parameter should be >= 1 (got {value!r})")


def window_sizes(
    probe: TokenizerLayer, max_seq_len: int | None, doc_stride: int | None
) -> tuple[int, int]:
    """transformers' defaults: ``min(model_max_length, 384)`` tokens, overlapping by
    ``min(max_seq_len // 2, 128)``."""
    if max_seq_len is None:
        max_seq_len = min(probe.settings["model_max_length"], LONGEST_DEFAULT_WINDOW)
    check_positive(max_seq_len=max_seq_len)
    if max_seq_len >= NO_LIMIT:
        raise PipelineError("max_seq_len is too large")
    if doc_stride is None:
        doc_stride = min(max_seq_len // 2, LONGEST_DEFAULT_STRIDE)
    if isinstance(doc_stride, bool) or not isinstance(doc_stride, int) or doc_stride < 0:
        raise PipelineError(f"doc_stride must be an integer >= 0 (got {doc_stride!r})")
    if doc_stride > max_seq_len:
        raise PipelineError(
            f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
        )
    return max_seq_len, doc_stride


def windowing_tokenizer(context: BuildContext, max_seq_len: int, doc_stride: int) -> TokenizerLayer:
    """The tokenizer as transformers' preprocess calls it: the question first, only the
    context cut, into windows of ``max_seq_len`` tokens overlapping by ``doc_stride``."""
    options = dict(
        return_overflowing_tokens=True,
        stride=doc_stride,
        return_offsets_mapping=True,
        return_word_ids=True,
        return_token_type_ids=True,
        offset_unit="char",
    )
    if isinstance(context.tokenizer_source, TokenizerLayer):
        options.update(max_length=max_seq_len, truncation="only_second", padding="longest")
        default_max_length = None
    else:
        default_max_length = max_seq_len
    try:
        return context.tokenizer(default_max_length, truncation="only_second", **options)
    except ValueError as error:
        raise PipelineError(
            f"doc_stride {doc_stride} with max_seq_len {max_seq_len}: {error}"
        ) from error
