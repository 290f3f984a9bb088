"""Overflow windows (`return_overflowing_tokens`, `stride`) against the HF fast tokenizer:
every window, in HF's order, with `overflow_to_sample_mapping`, and HF's errors."""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections import OrderedDict

import pytest
import tensorflow as tf
from model_fixtures import load_hf_tokenizer
from parity import LayerRunner, encoding_mismatches, python_text, report
from samples import FULL, slow_beyond

from tfpipe import TokenizerLayer
from tfpipe.export.verification import check_ops, run_self_check
from tfpipe.tokenization.overflow import STRIDE_TOO_LARGE, UNPADDABLE

os.environ.setdefault("RUST_BACKTRACE", "0")  # HF's stride panics print no Rust backtrace

MAPPING = "overflow_to_sample_mapping"
FAMILIES = ["bert-base-cased", "roberta-base", "t5-small", "llama-2"]
ALL = [
    "bert-base-cased",
    "bert-base-uncased",
    "bert-base-chinese",
    "distilbert-base-uncased",
    "roberta-base",
    "gpt2",
    "gpt-neox-20b",
    "llama-2",
    "t5-small",
    "albert-base-v2",
    "deberta-v3-small",
    "hf-fixture-test-sentencepiece",
    "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos",
]
NAMES = slow_beyond(ALL, FAMILIES)
TEXTS = (24, 200)  # corpus texts per call: default run, full run
PAIR_CHARS = 300
QUESTIONS = ["What is it?", "", "Who wrote the course about tokenizers and models?"]


def corpus_texts(corpus: list[str], offset: int = 0, max_chars: int | None = None) -> list[str]:
    """An even spread of the corpus; `max_chars` bounds longest_first pairs, whose windows
    are the product of both sequences' (two 10 kB texts: some 10^6 windows, in HF too)."""
    count = TEXTS[FULL]
    if max_chars is not None:
        corpus = [text for text in corpus if len(text) <= max_chars]
    step = max(1, len(corpus) // count)
    return corpus[offset::step][:count]


def tokenizer_pair(shared_dir, name: str, tmp_path=None, side: str | None = None, **config):
    """(LayerRunner, a fresh HF tokenizer) for a shared checkpoint; `side` sets both
    truncation and padding sides through a copied tokenizer_config.json, as HF reads them."""
    folder = shared_dir / "tokenizers" / name
    if side is not None:
        copy = tmp_path / f"{name}-{side}"
        shutil.copytree(folder, copy, dirs_exist_ok=True)
        settings = json.loads((copy / "tokenizer_config.json").read_text(encoding="utf-8"))
        settings.update(truncation_side=side, padding_side=side)
        (copy / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
        folder = copy
    hf = hf_tokenizer(folder)
    if config.get("padding") and hf.pad_token is None:
        hf.pad_token = hf.eos_token  # this module's own copy; unpadded calls ignore it
    if config.get("padding") and hf.pad_token != load_hf_tokenizer_pad(folder):
        config["pad_token"] = hf.pad_token
    layer = TokenizerLayer.from_pretrained(folder, return_overflowing_tokens=True, **config)
    KEEP[str(folder)] = layer  # keeps the compiled tokenizer alive for the next config
    KEEP.move_to_end(str(folder))
    while len(KEEP) > 4:
        KEEP.popitem(last=False)
    return LayerRunner(layer), hf


# A layer per recent checkpoint: compiled tokenizers are shared only while a layer holds one.
KEEP: OrderedDict = OrderedDict()


@functools.cache
def hf_tokenizer(folder) -> object:
    """This module's HF tokenizer per folder (pad tokens it sets stay here)."""
    return load_hf_tokenizer(folder)


@functools.cache
def load_hf_tokenizer_pad(folder) -> str | None:
    return load_hf_tokenizer(folder).pad_token


def hf_windows(hf, texts, pairs, **kwargs):
    """HF's windows, or the exception it raises (a Rust panic is a BaseException)."""
    try:
        encoded = hf(
            [python_text(t) for t in texts],
            None if pairs is None else [python_text(t) for t in pairs],
            return_overflowing_tokens=True,
            **kwargs,
        )
    except BaseException as error:  # noqa: BLE001 - pyo3's PanicException
        if isinstance(error, KeyboardInterrupt):
            raise
        return error
    if kwargs.get("padding") and len({len(row) for row in encoded["input_ids"]}) > 1:
        return ValueError("HF left windows longer than the padded length unpadded")
    return encoded


def window_mismatches(layer, hf, texts, pairs=None, **kwargs) -> list[str]:
    """Problems between the layer's windows and HF's for one batch HF accepts."""
    expected = hf_windows(hf, texts, pairs, **kwargs)
    assert not isinstance(expected, BaseException), f"HF raised {expected!r}"
    output = dict(layer(texts, pairs))
    got_mapping = output.pop(MAPPING).numpy().tolist()
    want = {k: v for k, v in expected.items() if k != MAPPING}
    mapping = list(expected[MAPPING])
    if got_mapping != mapping:
        return [f"{MAPPING}: {len(got_mapping)} windows, HF {len(mapping)}"]
    padded = kwargs.get("padding", False) not in (False, "do_not_pad")
    return encoding_mismatches(
        output,
        want,
        [texts[m] for m in mapping],
        None if pairs is None else [pairs[m] for m in mapping],
        padded,
        hf.convert_ids_to_tokens,
    )


def check_windows(layer, hf, texts, pairs=None, **kwargs) -> int:
    """Parity on every input HF accepts (all together in one batch); each input HF refuses
    makes the layer raise beside accepted ones. Returns how many inputs HF refused."""
    accepted, refused = [], []
    for i, text in enumerate(texts):
        one = hf_windows(hf, [text], None if pairs is None else [pairs[i]], **kwargs)
        (refused if isinstance(one, BaseException) else accepted).append(i)
    pick = lambda items, ids: None if items is None else [items[i] for i in ids]  # noqa: E731
    if accepted:
        problems = window_mismatches(
            layer, hf, pick(texts, accepted), pick(pairs, accepted), **kwargs
        )
        assert not problems, report(problems, len(accepted))
    for i in refused[:3]:
        batch = [i, *accepted[:3]]
        with pytest.raises(tf.errors.InvalidArgumentError):
            layer(pick(texts, batch), pick(pairs, batch))
    return len(refused)


STRIDES = slow_beyond([0, 1, 4, 7], [0, 4])


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("name", NAMES)
def test_single_texts_give_hf_windows(name, stride, shared_dir, corpus):
    paddings = ["longest", False, "max_length"] if FULL else ["longest"]
    for padding in paddings:
        layer, hf = tokenizer_pair(shared_dir, name, padding=padding, max_length=24, stride=stride)
        kwargs = dict(padding=padding, truncation=True, max_length=24, stride=stride)
        assert check_windows(layer, hf, corpus_texts(corpus), **kwargs) == 0


@pytest.mark.parametrize("name", NAMES)
def test_question_answering_pairs_give_hf_windows(name, shared_dir, corpus):
    """only_second with max_length padding, as question answering calls it."""
    layer, hf = tokenizer_pair(
        shared_dir, name, padding="max_length", truncation="only_second", max_length=32, stride=8
    )
    contexts = corpus_texts(corpus)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(contexts))]
    kwargs = dict(padding="max_length", truncation="only_second", max_length=32, stride=8)
    check_windows(layer, hf, questions, contexts, **kwargs)


PAIR_CASES = [
    ("longest_first", 0, "longest"),
    ("longest_first", 2, False),
    ("only_first", 3, "longest"),
    ("only_second", 0, False),
    ("longest_first", 5, "max_length"),
    ("only_first", 0, False),
]


@pytest.mark.parametrize(
    "name, strategy, stride, padding",
    [
        (name, *case)
        if (name == "bert-base-cased" and case in PAIR_CASES[:3])
        or (name == "t5-small" and case in PAIR_CASES[3:4])
        else pytest.param(name, *case, marks=pytest.mark.slow)
        for name in ALL
        for case in PAIR_CASES
    ],
)
def test_pairs_give_hf_windows_for_every_strategy(
    name, strategy, stride, padding, shared_dir, corpus
):
    """longest_first windows both sequences and crosses them; only_* window one and raise
    where HF refuses (a sequence too short to truncate, a stride not below what a
    longest_first sequence keeps)."""
    layer, hf = tokenizer_pair(
        shared_dir, name, padding=padding, truncation=strategy, max_length=20, stride=stride
    )
    cap = PAIR_CHARS if strategy == "longest_first" else None
    texts = corpus_texts(corpus, max_chars=cap)
    kwargs = dict(padding=padding, truncation=strategy, max_length=20, stride=stride)
    check_windows(layer, hf, texts, corpus_texts(corpus, offset=7, max_chars=cap), **kwargs)


@pytest.mark.parametrize("name", slow_beyond(ALL, ["t5-small", "bert-base-cased"]))
@pytest.mark.parametrize("padding", ["longest", False])
def test_left_truncation_windows_end_at_the_text_end(name, padding, shared_dir, corpus, tmp_path):
    layer, hf = tokenizer_pair(
        shared_dir, name, tmp_path, side="left", padding=padding, max_length=20, stride=3
    )
    texts = corpus_texts(corpus)
    kwargs = dict(padding=padding, truncation=True, max_length=20, stride=3)
    assert check_windows(layer, hf, texts, **kwargs) == 0
    texts, pairs = (corpus_texts(corpus, offset, PAIR_CHARS) for offset in (0, 3))
    check_windows(layer, hf, texts, pairs, **dict(kwargs, truncation="longest_first"))


EDGE_TEXTS = ["", " ", "a", "short text", "one two three four five six seven eight nine ten"]


@pytest.mark.parametrize("name", slow_beyond(ALL, ["bert-base-cased", "llama-2"]))
def test_edge_inputs_match_hf(name, shared_dir):
    """Empty and short texts (one window each), max_length at and below the special tokens
    (no truncation; windows of nothing and then of the whole text), truncation off."""
    hf = hf_tokenizer(shared_dir / "tokenizers" / name)
    specials = hf.num_special_tokens_to_add()
    for max_length, padding in [
        (specials, False),
        (specials + 1, "longest"),
        (specials + 1, False),
        (max(specials - 1, 0), False),
        (64, "max_length"),
    ]:
        layer, hf = tokenizer_pair(shared_dir, name, padding=padding, max_length=max_length)
        kwargs = dict(padding=padding, truncation=True, max_length=max_length)
        assert check_windows(layer, hf, EDGE_TEXTS, **kwargs) == 0
        check_windows(layer, hf, EDGE_TEXTS, EDGE_TEXTS[::-1], **kwargs)
    layer, hf = tokenizer_pair(shared_dir, name, padding=False, truncation=False)
    assert check_windows(layer, hf, EDGE_TEXTS, padding=False, truncation=False) == 0


def test_stride_errors_are_hfs(shared_dir):
    """Above max_length minus the special tokens HF refuses the settings on every call (a
    ValueError at build); equal to it, HF panics on each text it cuts (raised in the graph)."""
    name = "bert-base-cased"
    hf = hf_tokenizer(shared_dir / "tokenizers" / name)
    assert isinstance(
        hf_windows(hf, ["a"], None, truncation=True, max_length=7, stride=6), ValueError
    )
    with pytest.raises(ValueError, match="stride set to 6"):
        tokenizer_pair(shared_dir, name, max_length=7, stride=6)
    layer, hf = tokenizer_pair(shared_dir, name, padding=False, max_length=7, stride=5)
    long = EDGE_TEXTS[-1]
    assert isinstance(
        hf_windows(hf, [long], None, truncation=True, max_length=7, stride=5), BaseException
    )
    assert check_windows(layer, hf, EDGE_TEXTS, truncation=True, max_length=7, stride=5) == 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="stride"):
        layer([long])
    # longest_first shares the pair budget (7): both sequences cut keep 3 and 4 tokens.
    layer, hf = tokenizer_pair(
        shared_dir, name, padding=False, max_length=10, stride=3, truncation="longest_first"
    )
    kwargs = dict(truncation="longest_first", max_length=10, stride=3)
    assert check_windows(layer, hf, [long, "a", long], [long, long, "b"], **kwargs) == 1
    assert "stride" in STRIDE_TOO_LARGE


def test_windows_of_whole_texts_cannot_be_padded(shared_dir):
    """max_length equal to the special tokens: HF leaves each text's whole-text window
    unpadded (ragged); the layer raises where it would, and matches without padding."""
    layer, hf = tokenizer_pair(shared_dir, "bert-base-cased", padding="longest", max_length=2)
    got = hf(
        ["one two", "x"],
        padding="longest",
        truncation=True,
        max_length=2,
        return_overflowing_tokens=True,
    )
    assert len({len(row) for row in got["input_ids"]}) > 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="unpadded"):
        layer(["one two", "x"])
    assert check_windows(layer, hf, ["", ""], padding="longest", truncation=True, max_length=2) == 0
    assert "padding=False" in UNPADDABLE


def test_early_stop_paths_are_off_with_windows(shared_dir):
    """Early stops keep only a budget of tokens; windows need all of them."""
    for name in ["bert-base-cased", "t5-small"]:
        layer, hf = tokenizer_pair(shared_dir, name, padding=False, max_length=16)
        tokenizer = layer.layer
        assert tokenizer._cut_bytes is None and tokenizer._word_token_limit() is None
        texts = ["word " * 3000, "x" * 3000, "a " + "y" * 2000]
        kwargs = dict(padding=False, truncation=True, max_length=16)
        assert check_windows(layer, hf, texts, **kwargs) == 0


def test_get_config_keeps_the_options(shared_dir):
    layer, _ = tokenizer_pair(shared_dir, "t5-small", max_length=16, stride=3)
    config = layer.layer.get_config()
    assert config["return_overflowing_tokens"] is True and config["stride"] == 3
    rebuilt = TokenizerLayer.from_config(config)
    texts = tf.constant(EDGE_TEXTS)
    for key, value in layer.layer(texts).items():
        tf.debugging.assert_equal(rebuilt(texts)[key], value)
    default = TokenizerLayer.from_pretrained(shared_dir / "tokenizers" / "t5-small").get_config()
    assert default["return_overflowing_tokens"] is False and default["stride"] == 0


def test_export_with_windows_passes_the_self_check(shared_dir, tmp_path):
    """TF1 `serve` loader in a TensorFlow-only process, op audit, outputs equal to HF's."""
    name = "bert-base-cased"
    layer, hf = tokenizer_pair(
        shared_dir, name, padding="max_length", truncation="only_second", max_length=24, stride=6
    )
    spec = tf.TensorSpec([None], tf.string)
    serve = tf.function(
        lambda text, text_pair: layer.layer(text, text_pair=text_pair), input_signature=[spec, spec]
    )
    module = tf.Module()
    module.tokenizer = layer.layer
    export_dir = tmp_path / "export"
    concrete = serve.get_concrete_function()
    tf.saved_model.save(
        module, str(export_dir), signatures={"serving_default": concrete, "tokenize": concrete}
    )
    check_ops(export_dir)
    questions, contexts = QUESTIONS, [EDGE_TEXTS[-1] * 3, "", "short context"]
    report_ = run_self_check(export_dir, {"text": questions, "text_pair": contexts}, tmp_path)
    assert report_["error"] is None and not report_["foreign_ops"]
    assert not report_["imported_modules"]
    expected = hf(
        questions,
        contexts,
        padding="max_length",
        truncation="only_second",
        max_length=24,
        stride=6,
        return_overflowing_tokens=True,
    )
    served = report_["outputs"]["serving_default"]
    assert {k: served[k] for k in expected} == {k: list(v) for k, v in expected.items()}


def test_traced_layer_gives_the_same_windows(shared_dir, corpus):
    """Through a tf.function signature, as served: the asserts and windows in graph mode."""
    layer, hf = tokenizer_pair(
        shared_dir, "roberta-base", padding="longest", max_length=20, stride=2
    )
    traced = LayerRunner(layer.layer, traced=True)
    kwargs = dict(padding="longest", truncation="longest_first", max_length=20, stride=2)
    texts = corpus_texts(corpus, max_chars=PAIR_CHARS)[:12]
    check_windows(traced, hf, texts, corpus_texts(corpus, 5, PAIR_CHARS)[:12], **kwargs)
    assert check_windows(traced, hf, texts, **kwargs) == 0
    empty = traced([])
    assert empty["input_ids"].shape[0] == 0 and empty[MAPPING].shape == (0,)
