"""Question answering's post-processing in the graph: transformers' ``select_starts_ends``,
``decode_spans`` and ``get_indices`` per window (``WindowCandidates``), then ``postprocess``'s
merge of every window's answers and its top k (``RankedAnswers``).

Candidates whose score is 0 are dropped: transformers fills answers past the last positive
one with zero-score spans chosen by numpy's order among ties (platform-dependent, often
``start > end``), which no graph can reproduce. Everything else follows transformers.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras

from tfpipe.unconverted import unconverted

# transformers' value for what cannot be an answer, before the softmax.
MASKED_LOGIT = -10000.0
# postprocess's starting null score: "large and positive".
NULL_SCORE_START = 1000000.0


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class WindowCandidates(tf_keras.layers.Layer):
    """The best ``candidates`` answer spans of each window: score, character start and end.

    As transformers: start and end logits of tokens that cannot be in an answer (not in the
    context and not a CLS token) become -10000 before a softmax over the window; the null
    score is position 0's start times end probability; spans run from ``start`` to ``end <
    start + max_answer_len`` and score start times end probability, position 0 zeroed; with
    ``align_to_words`` a span widens to the whole words (of the window) its ends fall in.
    """

    def __init__(
        self,
        cls_token_id: int | None,
        max_answer_len: int,
        candidates: int,
        align_to_words: bool,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.cls_token_id = cls_token_id
        self.max_answer_len = int(max_answer_len)
        self.candidates = int(candidates)
        self.align_to_words = bool(align_to_words)

    @unconverted
    def call(self, logits: tf.Tensor, encoded: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        real = encoded["attention_mask"] > 0
        allowed = real & (encoded["sequence_ids"] == 1)
        if self.cls_token_id is not None:
            allowed |= real & (encoded["input_ids"] == self.cls_token_id)
        start = window_softmax(logits[..., 0], allowed, real)
        end = window_softmax(logits[..., 1], allowed, real)
        # Position 0's start times end probability (a window of no tokens has none: 0).
        null_score = tf.reduce_sum(start[:, :1] * end[:, :1], -1)
        not_first = tf.cast(tf.range(tf.shape(start)[1]) > 0, start.dtype)
        score, first, last = self._best_spans(start * not_first, end * not_first)
        valid = (score > 0) & tf.gather(allowed, first, batch_dims=1)
        valid &= tf.gather(allowed, last, batch_dims=1)
        char_start, char_end = self._char_span(encoded, first, last)
        return {
            "score": tf.where(valid, score, 0.0),
            "start": char_start,
            "end": char_end,
            "valid": valid,
            "null_score": null_score,
        }

    def _best_spans(self, start: tf.Tensor, end: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """The top spans by score, in transformers' flattened (start, end) order on ties: a
        band [windows, start, length] holds every span start <= end < start + max_answer_len."""
        width = tf.shape(start)[1]
        band = tf.minimum(self.max_answer_len, width)
        ends = tf.range(width)[:, None] + tf.range(band)[None, :]
        padded_end = tf.pad(end, [[0, 0], [0, band]])
        scores = start[:, :, None] * tf.gather(padded_end, ends, axis=1)
        flat = tf.reshape(scores, [tf.shape(start)[0], width * band])
        best = tf.math.top_k(flat, k=tf.minimum(self.candidates, width * band))
        first = best.indices // band
        return best.values, first, tf.minimum(first + best.indices % band, width - 1)

    def _char_span(
        self, encoded: dict[str, tf.Tensor], first: tf.Tensor, last: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``get_indices``: the offsets of the span's tokens, or with ``align_to_words`` the
        start of the first token of its first word and the end of the last token of its last
        word among the window's context tokens; offsets when either word is not found."""
        offsets = encoded["offset_mapping"]
        start = tf.gather(offsets[..., 0], first, batch_dims=1)
        end = tf.gather(offsets[..., 1], last, batch_dims=1)
        if not self.align_to_words:
            return start, end
        word_ids = encoded["word_ids"]
        in_context = (encoded["sequence_ids"] == 1) & (encoded["attention_mask"] > 0)
        first_word = tf.gather(word_ids, first, batch_dims=1)
        last_word = tf.gather(word_ids, last, batch_dims=1)

        def word_tokens(word: tf.Tensor) -> tf.Tensor:
            return (word[:, :, None] >= 0) & in_context[:, None, :] & (
                word_ids[:, None, :] == word[:, :, None]
            )

        width = tf.shape(word_ids)[1]
        positions = tf.range(width)[None, None, :]
        word_start = tf.reduce_min(tf.where(word_tokens(first_word), positions, width), -1)
        word_end = tf.reduce_max(tf.where(word_tokens(last_word), positions, -1), -1)
        found = (word_start < width) & (word_end >= 0)
        aligned_start = tf.gather(offsets[..., 0], tf.minimum(word_start, width - 1), batch_dims=1)
        aligned_end = tf.gather(offsets[..., 1], tf.maximum(word_end, 0), batch_dims=1)
        return tf.where(found, aligned_start, start), tf.where(found, aligned_end, end)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "cls_token_id": self.cls_token_id,
            "max_answer_len": self.max_answer_len,
            "candidates": self.candidates,
            "align_to_words": self.align_to_words,
        }


def window_softmax(logits: tf.Tensor, allowed: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """transformers' softmax over one window: masked tokens at -10000, padding left out."""
    masked = tf.where(allowed, logits, MASKED_LOGIT)
    masked = tf.where(real, masked, float("-inf"))
    exponentials = tf.exp(masked - tf.reduce_max(masked, -1, keepdims=True))
    return exponentials / tf.reduce_sum(exponentials, -1, keepdims=True)


@tf_keras.saving.register_keras_serializable(package="tfpipe")
class RankedAnswers(tf_keras.layers.Layer):
    """Each input row's ``top_k`` answers, from the candidates of its windows.

    As transformers' postprocess: windows in order, each window's spans best first; a span
    whose text equals (case-insensitively) an earlier answer's adds its score to it; with
    ``handle_impossible_answer`` the empty answer (0, 0) comes last with the smallest null
    score of the row's windows; a stable sort by score keeps the ``top_k`` best. Rows with an
    empty question or context (transformers raises) get no answer: ``num_answers`` 0.
    """

    def __init__(self, top_k: int, handle_impossible_answer: bool, **kwargs: Any) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.top_k = int(top_k)
        self.handle_impossible_answer = bool(handle_impossible_answer)

    @unconverted
    def call(
        self,
        question: tf.Tensor,
        context: tf.Tensor,
        window_rows: tf.Tensor,
        candidates: dict[str, tf.Tensor],
    ) -> dict[str, tf.Tensor]:
        answerable = (tf.strings.length(question) > 0) & (tf.strings.length(context) > 0)
        per_window = tf.shape(candidates["score"])[1]
        rows = tf.reshape(tf.repeat(window_rows, per_window), [-1])
        keep = tf.reshape(candidates["valid"], [-1]) & tf.gather(answerable, rows)
        rows = tf.boolean_mask(rows, keep)
        spans = {
            name: tf.boolean_mask(tf.reshape(candidates[name], [-1]), keep)
            for name in ("score", "start", "end")
        }
        texts = context_slices(context, rows, spans["start"], spans["end"])
        answers = merged_answers(rows, texts, spans)
        if self.handle_impossible_answer:
            answers = self._with_null_answers(answers, answerable, window_rows, candidates)
        return self._top_answers(answers, tf.shape(context)[0])

    def _with_null_answers(
        self,
        answers: dict[str, tf.Tensor],
        answerable: tf.Tensor,
        window_rows: tf.Tensor,
        candidates: dict[str, tf.Tensor],
    ) -> dict[str, tf.Tensor]:
        """The empty answer of every answerable row, after the row's other answers."""
        rows = tf.shape(answerable)[0]
        null = tf.math.unsorted_segment_min(candidates["null_score"], window_rows, rows)
        null = tf.minimum(tf.cast(null, tf.float64), NULL_SCORE_START)
        null_rows = tf.boolean_mask(tf.range(rows), answerable)
        count = tf.shape(null_rows)[0]
        nulls = {
            "row": null_rows,
            "score": tf.gather(null, null_rows),
            "start": tf.zeros([count], tf.int32),
            "end": tf.zeros([count], tf.int32),
            "answer": tf.fill([count], ""),
        }
        return {name: tf.concat([answers[name], nulls[name]], 0) for name in answers}

    def _top_answers(self, answers: dict[str, tf.Tensor], rows: tf.Tensor) -> dict[str, tf.Tensor]:
        """A stable sort by score then by row; each row's first ``top_k`` as [rows, top_k]."""
        order = tf.argsort(answers["score"], direction="DESCENDING", stable=True)
        order = tf.gather(order, tf.argsort(tf.gather(answers["row"], order), stable=True))
        ranked = {name: tf.gather(value, order) for name, value in answers.items()}
        counts = tf.math.bincount(ranked["row"], minlength=rows, maxlength=rows, dtype=tf.int32)
        firsts = tf.cumsum(counts, exclusive=True)
        slots = tf.range(self.top_k)[None, :]
        filled = slots < counts[:, None]
        total = tf.shape(ranked["row"])[0]
        index = tf.where(filled, firsts[:, None] + slots, total)
        padding = {"answer": "", "score": 0.0, "start": 0, "end": 0}
        outputs = {
            name: tf.gather(tf.concat([ranked[name], [pad]], 0), index)
            for name, pad in padding.items()
        }
        outputs["score"] = tf.cast(outputs["score"], tf.float32)
        outputs["num_answers"] = tf.minimum(counts, self.top_k)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "top_k": self.top_k,
            "handle_impossible_answer": self.handle_impossible_answer,
        }


def context_slices(
    context: tf.Tensor, rows: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor
) -> tf.Tensor:
    """``context[row][start:end]`` in code points of the context as Python decodes it
    (invalid UTF-8 as U+FFFD, as the tokenizer read it)."""
    code_points = tf.strings.unicode_decode(context, "UTF-8", errors="replace")
    row_starts = tf.gather(code_points.row_starts(), rows)
    lengths = tf.gather(code_points.row_lengths(), rows)
    starts64 = tf.minimum(tf.cast(starts, tf.int64), lengths)
    ends64 = tf.clip_by_value(tf.cast(ends, tf.int64), starts64, lengths)
    positions = tf.ragged.range(row_starts + starts64, row_starts + ends64)
    return tf.strings.unicode_encode(tf.gather(code_points.values, positions), "UTF-8")


def lower_case(texts: tf.Tensor) -> tf.Tensor:
    """A key equal for texts equal after Python's ``str.lower``: ICU's lower case of each
    part between NULs (where StringLower stops), each prefixed with its length."""
    parts = tf.strings.lower(tf.strings.split(texts, "\x00"), encoding="utf-8")
    lengths = tf.strings.as_string(tf.strings.length(parts.flat_values))
    prefixed = parts.with_flat_values(tf.strings.join([lengths, parts.flat_values], ":"))
    return tf.strings.reduce_join(prefixed, axis=-1)


def merged_answers(
    rows: tf.Tensor, texts: tf.Tensor, spans: dict[str, tf.Tensor]
) -> dict[str, tf.Tensor]:
    """One answer per (row, lower-cased text), at its first span, scores summed (float64 as
    Python sums them)."""
    keys = tf.strings.join([tf.strings.as_string(rows), lower_case(texts)], ":")
    _, answer_of = tf.unique(keys, out_idx=tf.int32)
    count = tf.reduce_max(tf.concat([answer_of, [-1]], 0)) + 1
    first = tf.math.unsorted_segment_min(tf.range(tf.shape(keys)[0]), answer_of, count)
    score = tf.math.unsorted_segment_sum(tf.cast(spans["score"], tf.float64), answer_of, count)
    return {
        "row": tf.gather(rows, first),
        "score": score,
        "start": tf.gather(spans["start"], first),
        "end": tf.gather(spans["end"], first),
        "answer": tf.gather(texts, first),
    }
