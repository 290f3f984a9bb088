"""Overflow windows: every window `tokenizers` returns with `return_overflowing_tokens`.

`Encoding::truncate(max_len, stride)` keeps the first (right side) or last (left side)
`max_len` tokens and moves the rest into overflowing encodings of up to `max_len` tokens,
each overlapping the previous one by `stride` tokens: on the right, windows start at 0,
step, 2·step, … (step = max_len - stride) until one reaches the end; on the left they end
at len, len - step, … until one starts at 0. With `max_len` 0 a cut sequence becomes an
empty window followed by the whole sequence. A pair merges the windows of its two
sequences as `Encoding::merge_with` does: every (first, second) combination, the kept ones
(0, 0) first, then first-sequence windows 1… each with every second-sequence window, then
first window 0 with second-sequence windows 1….

The windows are computed on the sequences before the template is applied, as ragged
[windows, (tokens)] sequences of the kept tokens plus the row each came from; `Windows`
holds the source index of every windowed token, so any per-token value (ids, word ids,
offsets) is windowed by one gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfpipe.tokenization.padding import Padding
from tfpipe.tokenization.processors import PostProcessor
from tfpipe.tokenization.ragged_ops import expand, select

STRIDE_TOO_LARGE = (
    "`stride` must be strictly less than the tokens a truncated sequence keeps "
    "(max_length minus the special tokens, shared between a pair's sequences under "
    "longest_first): the Hugging Face tokenizer panics on this input"
)
UNPADDABLE = (
    "A sequence truncated to 0 tokens overflows into a window holding all of it, longer "
    "than the padded length: the Hugging Face tokenizer leaves such windows unpadded. Use "
    "padding=False or a larger max_length"
)


@dataclass(frozen=True)
class Windows:
    """Where every windowed token comes from: `sample` [windows] is the input row of each
    window, `main` whether it is the row's first (what HF returns without overflow),
    `sources[s]` the flat index into sequence s's values of each of its windowed tokens,
    `lengths[s]` [windows] how many tokens of sequence s each window holds."""

    sample: tf.Tensor
    main: tf.Tensor
    sources: list[tf.Tensor]
    lengths: list[tf.Tensor]

    def gather(self, sequences: list[tf.RaggedTensor]) -> list[tf.RaggedTensor]:
        """Per-token values laid out like the encoded sequences, windowed."""
        return [
            tf.RaggedTensor.from_row_lengths(
                tf.gather(sequence.values, source), tf.cast(length, tf.int64), validate=False
            )
            for sequence, source, length in zip(sequences, self.sources, self.lengths, strict=True)
        ]


def stride_check(lengths: list[tf.Tensor], kept: list[tf.Tensor], stride: int) -> tf.Operation:
    """HF panics when a sequence is cut to a positive length no greater than `stride`."""
    bad = [(k < n) & (k > 0) & (k <= stride) for n, k in zip(lengths, kept, strict=True)]
    return tf.debugging.Assert(~tf.reduce_any(tf.concat(bad, 0)), [STRIDE_TOO_LARGE])


def window_counts(length: tf.Tensor, kept: tf.Tensor, stride: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(windows per row, step between window starts) of one sequence's rows."""
    step = tf.maximum(kept - stride, 1)
    cut = kept < length
    count = tf.where(kept > 0, 1 + (length - kept + step - 1) // step, 2)
    return tf.where(cut, count, 1), step


def window_spans(
    length: tf.Tensor, kept: tf.Tensor, step: tf.Tensor, index: tf.Tensor, left: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    """(first token, token count) of window `index` of each (row-gathered) sequence."""
    if left:
        stop = length - index * step
        start = tf.maximum(stop - kept, 0)
    else:
        start = index * step
        stop = tf.minimum(start + kept, length)
    whole = (kept == 0) & (index > 0)  # max_len 0: the second window is the whole sequence
    start = tf.where(whole, 0, start)
    size = tf.where(whole, length, stop - start)
    return start, size


def pair_order(first: tf.Tensor, second: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(first-sequence window, second-sequence window) of a row's k-th merged window, in
    `Encoding::merge_with`'s order (see the module docstring)."""
    later = k - 1
    crossed = (first - 1) * second
    in_cross = (k > 0) & (later < crossed)
    safe = tf.maximum(second, 1)
    i = tf.where(in_cross, 1 + later // safe, 0)
    j = tf.where(in_cross, later % safe, tf.where(k > 0, k - crossed, 0))
    return i, j


def windows(
    sequences: list[tf.RaggedTensor], kept: list[tf.Tensor], stride: int, left: bool
) -> Windows:
    """Every window of every row (see the module docstring), rows in order."""
    lengths = [tf.cast(s.row_lengths(), tf.int32) for s in sequences]
    counts, steps = zip(
        *(window_counts(n, k, stride) for n, k in zip(lengths, kept, strict=True)), strict=True
    )
    total = counts[0] if len(counts) == 1 else counts[0] * counts[1]
    sample, k = expand(total)
    if len(counts) == 1:
        indices = [k]
    else:
        indices = list(pair_order(tf.gather(counts[0], sample), tf.gather(counts[1], sample), k))
    sources, sizes = [], []
    for sequence, length, keep, step, index in zip(
        sequences, lengths, kept, steps, indices, strict=True
    ):
        start, size = window_spans(
            tf.gather(length, sample),
            tf.gather(keep, sample),
            tf.gather(step, sample),
            index,
            left,
        )
        window, position = expand(size)
        first = tf.cast(sequence.row_starts(), tf.int32)
        sources.append(tf.gather(tf.gather(first, sample) + start, window) + position)
        sizes.append(size)
    return Windows(sample, k == 0, sources, sizes)


def check_stride(stride: int, max_length: int | None, specials: int) -> int:
    """`stride`, or HF's error (`Tokenizer::with_truncation`, raised on every call): a stride
    above max_length minus a single text's special tokens (unless that wraps below 0)."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
        raise ValueError(f"stride must be a non-negative int, got {stride!r}")
    if max_length is not None and specials <= max_length < specials + stride:
        raise ValueError(
            f"tokenizer stride set to {stride}, which is greater than or equal to its effective "
            f"max length of {max_length - specials} (= {max_length} original max length - "
            f"{specials} added special tokens)"
        )
    return stride


def padding_check(
    sizes: list[tf.Tensor], main: tf.Tensor, post_processor: PostProcessor, padding: Padding
) -> tf.Operation:
    """HF pads every window to the width of the rows' first windows; a window longer than
    that (a sequence cut to 0 tokens overflows whole) stays unpadded, which no tensor holds."""
    totals = tf.add_n(sizes) + post_processor.num_special_tokens(pair=len(sizes) == 2)
    width = padding.width(select(totals, main))
    return tf.debugging.Assert(tf.reduce_all(totals <= width), [UNPADDABLE])
