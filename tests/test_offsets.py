"""Offsets in the graph, piece by piece against tokenizers: each normalized code point's
alignment to the original text, the pre-tokenizer's words with theirs, and each model's token
spans in its words."""

from __future__ import annotations

import bisect
import itertools
import json

import pytest
import tensorflow as tf
from samples import FULL, slow_beyond
from tokenizers import PreTokenizedString, Tokenizer

from tfpipe.tokenization.models import compile_model
from tfpipe.tokenization.normalizers import Normalizer
from tfpipe.tokenization.pipeline import decode_replacing_errors
from tfpipe.tokenization.pre_tokenizers import PreTokenizer

SHARED_TOKENIZERS = (
    "albert-base-v2", "bert-base-cased", "bert-base-chinese", "bert-base-uncased",
    "deberta-v3-small", "distilbert-base-uncased", "gpt-neox-20b", "gpt2",
    "hf-fixture-test-sentencepiece", "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos", "llama-2", "roberta-base", "t5-small",
)
# One per normalizer and model family in the default run.
DEFAULT_TOKENIZERS = ("bert-base-uncased", "roberta-base", "t5-small", "llama-2")
# Normalizer components the shared tokenizers lack, and sequences that chain edits.
NORMALIZERS = {
    "nfc": {"type": "NFC"},
    "nfkc": {"type": "NFKC"},
    "nfd": {"type": "NFD"},
    "nfkd": {"type": "NFKD"},
    "lowercase": {"type": "Lowercase"},
    "strip-accents": {"type": "StripAccents"},
    "nmt": {"type": "Nmt"},
    "strip": {"type": "Strip", "strip_left": True, "strip_right": True},
    "strip-left": {"type": "Strip", "strip_left": True, "strip_right": False},
    "prepend": {"type": "Prepend", "prepend": "\u2581x"},
    "replace-regex": {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
    "replace-string": {"type": "Replace", "pattern": {"String": "ab"}, "content": "xyz"},
    "replace-empty-matches": {"type": "Replace", "pattern": {"Regex": "a*"}, "content": "Q"},
    "replace-removing": {"type": "Replace", "pattern": {"String": "  "}, "content": ""},
    "replace-one-char": {"type": "Replace", "pattern": {"String": "e"}, "content": "ab"},
    "byte-level": {"type": "ByteLevel"},
    "chain": {
        "type": "Sequence",
        "normalizers": [
            {"type": "NFD"},
            {"type": "StripAccents"},
            {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": "[aeiou]+"}, "content": ""},
            {"type": "NFKC"},
        ],
    },
}
# Reordering and composition around a decomposed character, Hangul, ligatures, edges.
EDGE_TEXTS = [
    "", " ", "  lead trail  ", "Héllo 中文 İx\x00y", "a\u0301\u0316b", "e\u0301",
    "\u00e9\u0316", "\u00e1\u0316\u0301", "\u1ead\u0309", "x\u0451\u0323\u031d\u0302\u031a",
    "\u1100\u1161\u11a8", "\uac01a", "ﬁ ½ Å ǅ", "\ufeffx", "\u05d8\u05bc\u05ba",
]


def shared_document(shared_dir, name: str) -> tuple[dict, Tokenizer]:
    path = shared_dir / "tokenizers" / name / "tokenizer.json"
    return json.loads(path.read_text(encoding="utf-8")), Tokenizer.from_file(str(path))


@pytest.fixture(scope="module")
def texts(corpus, generated_texts) -> list[str]:
    """An even spread of course and generated texts: the reference's per-code-point splits
    cost milliseconds a text, so the full run takes thousands, not the whole corpus."""
    size = 3000 if FULL else 500
    return EDGE_TEXTS + spread(corpus, size) + spread(generated_texts, size)


def spread(texts: list[str], size: int) -> list[str]:
    return texts[:: max(1, len(texts) // size)][:size]


def reference_splits(text: str, normalizer=None, pre_tokenizer=None, chars: bool = False):
    """tokenizers' splits of `text` (words, or with `chars` their code points), each with its
    original offsets in code points."""
    pretokenized = PreTokenizedString(text)
    if normalizer is not None:
        pretokenized.normalize(lambda normalized: normalizer.normalize(normalized))
    if pre_tokenizer is not None:
        pre_tokenizer.pre_tokenize(pretokenized)
    if chars:
        pretokenized.split(lambda _, s: [s[i : i + 1] for i in range(len(s.normalized))])
    return [(split, offsets) for split, offsets, _ in pretokenized.get_splits("original", "char")]


def rows_with_alignment(cps: tf.RaggedTensor, alignment: tf.Tensor) -> list[list]:
    aligned = tf.RaggedTensor.from_row_splits(alignment, cps.row_splits).to_list()
    return [
        [(chr(c), tuple(a)) for c, a in zip(row, row_alignment, strict=True)]
        for row, row_alignment in zip(cps.to_list(), aligned, strict=True)
    ]


def mismatches(expected: list, actual: list, texts: list[str]) -> list[str]:
    return [
        f"{text!r}: tokenizers {want[:8]}… tfpipe {got[:8]}…"
        for text, want, got in zip(texts, expected, actual, strict=True)
        if want != got
    ]


def check_normalizer(component: dict, texts: list[str]) -> None:
    reference = Tokenizer.from_str(
        json.dumps({"version": "1.0", "normalizer": component, "model": {"type": "WordLevel",
                    "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}})
    ).normalizer
    cps, alignment = Normalizer(component).aligned(decode_replacing_errors(tf.constant(texts)))
    expected = [reference_splits(text, reference, chars=True) for text in texts]
    problems = mismatches(expected, rows_with_alignment(cps, alignment), texts)
    assert not problems, f"{len(problems)} of {len(texts)} differ: {problems[:3]}"


@pytest.mark.parametrize("name", slow_beyond(list(NORMALIZERS), ("nfc", "chain", "replace-regex")))
def test_normalizer_alignments_match_tokenizers(name, texts):
    check_normalizer(NORMALIZERS[name], texts)


@pytest.mark.parametrize("name", slow_beyond(SHARED_TOKENIZERS, DEFAULT_TOKENIZERS))
def test_shared_normalizer_alignments_match_tokenizers(name, shared_dir, texts):
    document, _ = shared_document(shared_dir, name)
    if document.get("normalizer") is None:
        pytest.skip(f"{name} has no normalizer")
    check_normalizer(document["normalizer"], texts)


@pytest.mark.parametrize("name", slow_beyond(SHARED_TOKENIZERS, DEFAULT_TOKENIZERS))
def test_word_alignments_match_tokenizers(name, shared_dir, texts):
    """Every word's code points, and so its offsets, after normalizer and pre-tokenizer."""
    document, reference = shared_document(shared_dir, name)
    cps, alignment = Normalizer(document.get("normalizer")).aligned(
        decode_replacing_errors(tf.constant(texts))
    )
    words, text_of_word, word_alignment = PreTokenizer(document.get("pre_tokenizer")).aligned(
        cps, alignment
    )
    actual = [[] for _ in texts]
    for text, word in zip(
        text_of_word.numpy().tolist(), rows_with_alignment(words, word_alignment), strict=True
    ):
        actual[text] += word
    expected = [
        reference_splits(text, reference.normalizer, reference.pre_tokenizer, chars=True)
        for text in texts
    ]
    problems = mismatches(expected, actual, texts)
    assert not problems, f"{len(problems)} of {len(texts)} differ: {problems[:3]}"


def char_offsets(byte_starts: list[int], offsets: tuple[int, int]) -> tuple[int, int]:
    """A token's byte offsets in its word as code points, widened to whole code points (as
    alignments widen a token ending inside one: a byte-fallback token spans its character).
    `byte_starts`: the byte offset of each code point of the word, and of its end."""
    return (
        bisect.bisect_right(byte_starts, offsets[0]) - 1,
        bisect.bisect_left(byte_starts, offsets[1]),
    )


def byte_starts(word: str) -> list[int]:
    return list(itertools.accumulate((len(c.encode()) for c in word), initial=0))


@pytest.mark.parametrize("name", slow_beyond(SHARED_TOKENIZERS, DEFAULT_TOKENIZERS))
def test_token_spans_match_tokenizers(name, shared_dir, texts):
    """Each model's tokens placed in their words, on every distinct word of the texts."""
    document, reference = shared_document(shared_dir, name)
    words = sorted({
        word
        for text in texts
        for word, _ in reference_splits(text, reference.normalizer, reference.pre_tokenizer)
        if word
    })
    model = compile_model(document["model"])
    cps = [[ord(c) for c in word] for word in words]
    ids, start, stop = model.tokenize_with_spans(
        tf.ragged.constant(cps, tf.int32, row_splits_dtype=tf.int64)
    )
    spans = iter(zip(start.numpy().tolist(), stop.numpy().tolist(), strict=True))
    actual = [[(token, next(spans)) for token in row] for row in ids.to_list()]
    expected = [
        [(t.id, char_offsets(starts, t.offsets)) for t in reference.model.tokenize(word)]
        for word, starts in zip(words, map(byte_starts, words), strict=True)
    ]
    problems = mismatches(expected, actual, words)
    assert not problems, f"{len(problems)} of {len(words)} words differ: {problems[:3]}"
