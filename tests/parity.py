"""Run TokenizerLayer and the Hugging Face tokenizer on the same texts and compare exactly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import tensorflow as tf

Text = str | bytes
NO_PADDING = (False, "do_not_pad")
KEY_ORDER = ["input_ids", "token_type_ids", "attention_mask"]


class LayerRunner:
    """Calls a TokenizerLayer on Python string lists.

    Eager by default (the layer's encoder is a tf.function of its own); ``traced=True`` goes
    through outer ``tf.function`` signatures as in serving, at the cost of tracing each.
    """

    def __init__(self, layer, traced: bool = False):
        self.layer = layer
        spec = tf.TensorSpec([None], tf.string)
        self._single, self._pair = layer, lambda text, pair: layer(text, text_pair=pair)
        if traced:
            self._single = tf.function(lambda text: layer(text), input_signature=[spec])
            self._pair = tf.function(self._pair, input_signature=[spec, spec])

    def __call__(self, texts: Sequence[Text], pairs: Sequence[Text] | None = None) -> dict:
        text = tf.constant(list(texts), dtype=tf.string, shape=[len(texts)])
        if pairs is None:
            return self._single(text)
        return self._pair(text, tf.constant(list(pairs), dtype=tf.string, shape=[len(pairs)]))


def graph_constant_bytes(layer) -> int:
    """Bytes of the constants in the layer's graph, traced on a string vector as in serving
    (a serving process copies them many times: docs/serving.md, Memory)."""
    from tfpipe.export.graph_audit import constant_bytes

    spec = tf.TensorSpec([None], tf.string)
    function = tf.function(lambda text: layer(text), input_signature=[spec])
    return constant_bytes(function.get_concrete_function().graph.as_graph_def())


def shifted(texts: Sequence[Text], by: int = 1) -> list[Text]:
    """Partners for pair encoding: the same texts rotated, so lengths mix."""
    return list(texts[by:]) + list(texts[:by])


def hf_accepts(hf, text: Text, pair: Text | None, **kwargs) -> bool:
    """Whether the HF tokenizer encodes this input or raises (only_* truncation errors)."""
    try:
        hf([text], None if pair is None else [pair], **kwargs)
    except Exception:  # tokenizers raises a bare Exception for truncation errors
        return False
    return True


def split_by_hf_acceptance(
    hf, texts: Sequence[Text], pairs: Sequence[Text] | None, **kwargs
) -> tuple[list[int], list[int]]:
    """Indices of the inputs HF encodes and of those it refuses, with the call ``kwargs``."""
    accepted, rejected = [], []
    for i, text in enumerate(texts):
        pair = None if pairs is None else pairs[i]
        (accepted if hf_accepts(hf, text, pair, **kwargs) else rejected).append(i)
    return accepted, rejected


def python_text(text: Text) -> str:
    """What the HF tokenizer sees for a layer input: bytes decoded with U+FFFD replacement."""
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text


def layer_rows(output: dict, padded: bool) -> tuple[dict[str, list[list[int]]], list[str]]:
    """The layer's output as Python id lists, plus any structural problems (type, dtype)."""
    rows, problems = {}, []
    for key, value in output.items():
        if value.dtype != tf.int32:
            problems.append(f"{key}: dtype {value.dtype.name}, expected int32")
        if padded:
            if isinstance(value, tf.RaggedTensor):
                problems.append(f"{key}: RaggedTensor, expected a dense tensor when padding")
                rows[key] = value.to_list()
            else:
                rows[key] = np.asarray(value).tolist()
        elif not isinstance(value, tf.RaggedTensor):
            problems.append(f"{key}: {type(value).__name__}, expected RaggedTensor without padding")
            rows[key] = np.asarray(value).tolist()
        else:
            rows[key] = value.to_list()
    return rows, problems


def _window(ids: list[int], at: int, tokens) -> str:
    lo = max(0, at - 4)
    shown = ids[lo : at + 8]
    more = ",..." if at + 8 < len(ids) else ""
    text = f"[{'...,' if lo else ''}{', '.join(map(str, shown))}{more}]"
    if tokens is not None:
        text += f" {tokens(shown)}"
    return f"len {len(ids)} {text}"


def encoding_mismatches(
    output: dict,
    expected,
    texts: Sequence[Text],
    pairs: Sequence[Text] | None = None,
    padded: bool = True,
    tokens=None,
) -> list[str]:
    """One report line per problem: wrong keys/shapes, then every text whose ids differ.

    ``expected`` is the HF BatchEncoding (Python lists); ``tokens`` optionally maps ids to
    token strings for the report.
    """
    got, problems = layer_rows(output, padded)
    want = {key: list(value) for key, value in expected.items()}
    if set(got) != set(want):
        problems.append(f"keys {sorted(got)}, HF returns {sorted(want)}")
    if padded and texts:
        for key in set(got) & set(want):
            got_shape, want_shape = np.shape(got[key]), np.shape(want[key])
            if got_shape != want_shape:
                problems.append(f"{key}: shape {got_shape}, HF {want_shape}")
    for i in range(len(texts)):
        for key in sorted(set(got) & set(want), key=KEY_ORDER.index):
            g = got[key][i] if i < len(got[key]) else []
            w = want[key][i]
            if g != w:
                at = next((j for j, (a, b) in enumerate(zip(g, w, strict=False)) if a != b),
                          min(len(g), len(w)))
                label = f"text[{i}]={python_text(texts[i])!r:.200}"
                if pairs is not None:
                    label += f" pair={python_text(pairs[i])!r:.200}"
                problems.append(
                    f"{label}\n    {key} differs at {at}:\n"
                    f"      HF    {_window(w, at, tokens if key == 'input_ids' else None)}\n"
                    f"      layer {_window(g, at, tokens if key == 'input_ids' else None)}"
                )
                break
    return problems


def assert_same_encoding(
    output: dict,
    expected,
    texts: Sequence[Text],
    pairs: Sequence[Text] | None = None,
    padded: bool = True,
    tokens=None,
    max_report: int = 5,
) -> None:
    """Fail with the first ``max_report`` problems if the layer output differs from HF."""
    problems = encoding_mismatches(output, expected, texts, pairs, padded, tokens)
    assert not problems, report(problems, len(texts), max_report)


def report(problems: list[str], total: int, max_report: int = 5) -> str:
    shown = "\n".join(problems[:max_report])
    return f"{len(problems)} problems over {total} texts; first {max_report}:\n{shown}"


def check_parity(
    layer: LayerRunner,
    hf,
    texts: Sequence[Text],
    pairs: Sequence[Text] | None = None,
    *,
    batch_size: int = 1024,
    max_report: int = 5,
    **hf_kwargs,
) -> None:
    """Encode ``texts`` (and ``pairs``) in batches with both tokenizers; assert identical ids.

    ``hf_kwargs`` are the HF call arguments matching the layer's configuration (padding,
    truncation, max_length, pad_to_multiple_of, return_token_type_ids).
    """
    padded = hf_kwargs.get("padding", False) not in NO_PADDING
    problems = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        batch_pairs = None if pairs is None else pairs[start : start + batch_size]
        expected = hf(
            [python_text(t) for t in batch],
            None if batch_pairs is None else [python_text(t) for t in batch_pairs],
            **hf_kwargs,
        )
        found = encoding_mismatches(
            layer(batch, batch_pairs), expected, batch, batch_pairs, padded,
            hf.convert_ids_to_tokens,
        )
        problems += [f"batch@{start}: {p}" for p in found]
    assert not problems, report(problems, len(texts), max_report)


def check_parity_where_hf_accepts(
    layer: LayerRunner,
    hf,
    texts: Sequence[Text],
    pairs: Sequence[Text] | None = None,
    *,
    refusals: bool | None,
    **hf_kwargs,
) -> None:
    """Parity on every input HF encodes; an input HF refuses (only_* truncation that would
    empty a sequence) makes the layer raise too, in a batch beside accepted ones.

    ``refusals``: whether ``texts`` must hold inputs HF refuses (True), must not (False), or
    may (None).
    """
    def pick(items, indices):
        return None if items is None else [items[i] for i in indices]

    accepted, rejected = split_by_hf_acceptance(hf, texts, pairs, **hf_kwargs)
    check_parity(layer, hf, pick(texts, accepted), pick(pairs, accepted), **hf_kwargs)
    if refusals is not None:
        assert bool(rejected) == refusals, (
            f"{len(rejected)} inputs HF refuses to truncate, expected "
            f"{'some' if refusals else 'none'}"
        )
    if rejected:
        bad = rejected[:1] + accepted[:5]
        with pytest.raises(tf.errors.InvalidArgumentError):
            layer(pick(texts, bad), pick(pairs, bad))
