"""Offsets in the graph, piece by piece against tokenizers: each normalized code point's
alignment to the original text, the pre-tokenizer's words with theirs, and each model's token
spans in its words."""

from __future__ import annotations

import bisect
import itertools
import json

import pytest
import tensorflow as tf
from annotations import (
    ANNOTATED,
    COMBOS,
    FAMILIES,
    FULL_COMBOS,
    MAX_LENGTH,
    SHARED,
    check_annotations,
    edge_texts,
    hf_rows,
    left_sided_copy,
    mismatches,
    run_combo,
    served_and_expected,
    tokenizer_pair,
)
from parity import shifted
from samples import FULL, slow_beyond
from tokenizers import PreTokenizedString, Tokenizer

from tfpipe import TokenizerLayer
from tfpipe.tokenization.checkpoint import read_as_tokenizers_does
from tfpipe.tokenization.models import compile_model
from tfpipe.tokenization.normalizers import Normalizer
from tfpipe.tokenization.pipeline import decode_replacing_errors
from tfpipe.tokenization.pre_tokenizers import PreTokenizer

SHARED_TOKENIZERS = SHARED
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
    "",
    " ",
    "  lead trail  ",
    "Héllo 中文 İx\x00y",
    "a\u0301\u0316b",
    "e\u0301",
    "\u00e9\u0316",
    "\u00e1\u0316\u0301",
    "\u1ead\u0309",
    "x\u0451\u0323\u031d\u0302\u031a",
    "\u1100\u1161\u11a8",
    "\uac01a",
    "ﬁ ½ Å ǅ",
    "\ufeffx",
    "\u05d8\u05bc\u05ba",
]


def shared_document(shared_dir, name: str) -> tuple[dict, Tokenizer]:
    """The tokenizer.json as `tokenizers` reads it (Unigram scores: checkpoint.py), and the
    reference."""
    path = shared_dir / "tokenizers" / name / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    return read_as_tokenizers_does(text), Tokenizer.from_str(text)


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


def differing(expected: list, actual: list, texts: list[str]) -> list[str]:
    return [
        f"{text!r}: tokenizers {want[:8]}… tfpipe {got[:8]}…"
        for text, want, got in zip(texts, expected, actual, strict=True)
        if want != got
    ]


def check_normalizer(component: dict, texts: list[str]) -> None:
    reference = Tokenizer.from_str(
        json.dumps(
            {
                "version": "1.0",
                "normalizer": component,
                "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"},
            }
        )
    ).normalizer
    cps, alignment = Normalizer(component).aligned(decode_replacing_errors(tf.constant(texts)))
    expected = [reference_splits(text, reference, chars=True) for text in texts]
    problems = differing(expected, rows_with_alignment(cps, alignment), texts)
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
    problems = differing(expected, actual, texts)
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
    words = sorted(
        {
            word
            for text in texts
            for word, _ in reference_splits(text, reference.normalizer, reference.pre_tokenizer)
            if word
        }
    )
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
    problems = differing(expected, actual, words)
    assert not problems, f"{len(problems)} of {len(words)} words differ: {problems[:3]}"


# --- End to end: TokenizerLayer's offset_mapping against HF's ----------------------------------

OFFSETS = dict(return_offsets_mapping=True, **ANNOTATED)
OFFSET_FAMILIES = (*FAMILIES, "albert-base-v2")
OFFSET_STRIDE = 200 if FULL else 800


@pytest.mark.parametrize("combo", COMBOS, ids=["longest", "unpadded", "max_length-only_second"])
@pytest.mark.parametrize("name", OFFSET_FAMILIES)
def test_offset_mapping_matches_hf_on_course_texts(
    name, combo, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    """Offsets, with every other output, on singles and pairs; albert's [MASK] takes the
    space before it (lstrip), which roberta's trim_offsets takes back off <mask>."""
    path = shared_dir / "tokenizers" / name
    texts = corpus[::OFFSET_STRIDE] + edge_texts(hf_tokenizer(path))
    run_combo(path, hf_tokenizer, tokenizer_layer, texts, shifted(texts, 7), combo, OFFSETS)


@pytest.mark.parametrize("name", ["roberta-base", "llama-2"])
def test_offsets_follow_left_truncation(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer, tmp_path
):
    """The first token kept on the left is the one trim_offsets treats as first."""
    folder = left_sided_copy(shared_dir / "tokenizers" / name, tmp_path, hf_tokenizer)
    texts = corpus[::OFFSET_STRIDE] + edge_texts(hf_tokenizer(folder))
    combo = ("longest", "longest_first", MAX_LENGTH, None)
    run_combo(folder, hf_tokenizer, tokenizer_layer, texts, shifted(texts, 5), combo, OFFSETS)


@pytest.mark.parametrize("name", ["bert-base-cased", "roberta-base", "t5-small"])
def test_offsets_in_question_answering_windows_match_hf(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    """Pairs windowed as question answering asks: only_second, max_length padding, a stride."""
    path = shared_dir / "tokenizers" / name
    contexts = [text for text in corpus[::OFFSET_STRIDE] if len(text) > 80]
    asked = ("What is it?", "Who wrote this code, and why?", "Où ?", "")
    questions = [asked[i % len(asked)] for i in range(len(contexts))]
    options = dict(truncation="only_second", max_length=48, stride=12, padding="max_length")
    layer, hf = tokenizer_pair(
        path,
        hf_tokenizer,
        tokenizer_layer,
        "max_length",
        {**OFFSETS, "return_overflowing_tokens": True},
        truncation="only_second",
        max_length=48,
        stride=12,
    )
    want = hf_rows(
        hf,
        questions,
        contexts,
        return_offsets_mapping=True,
        return_overflowing_tokens=True,
        **options,
    )
    problems = mismatches(layer(questions, contexts), want, questions, contexts, padded=True)
    assert not problems, f"{len(problems)} problems; first 3:\n" + "\n".join(problems[:3])


def test_byte_offsets_slice_the_input(shared_dir, tokenizer_layer, hf_tokenizer):
    """offset_unit="byte": substr of the input at a token's byte offsets is the text at its
    code-point offsets, invalid UTF-8 included (its U+FFFD spans the bytes it replaced)."""
    path = shared_dir / "tokenizers" / "roberta-base"
    texts = ["Naïve café 東京 <mask> ok", b"caf\xc3 \xff\xfe word \xe2\x82", "", "a\u0301 b"]
    chars = tokenizer_layer(path, return_offsets_mapping=True)(texts)["offset_mapping"].numpy()
    layer = tokenizer_layer(path, return_offsets_mapping=True, offset_unit="byte")
    in_bytes = layer(texts)["offset_mapping"].numpy()
    for text, char_row, byte_row in zip(texts, chars, in_bytes, strict=True):
        raw = text if isinstance(text, bytes) else text.encode()
        decoded = raw.decode("utf-8", errors="replace")
        for (start, end), (byte_start, byte_end) in zip(char_row, byte_row, strict=True):
            piece = raw[byte_start:byte_end].decode("utf-8", errors="replace")
            assert piece == decoded[start:end]


def test_offsets_of_an_empty_batch_and_the_option_off(shared_dir, tokenizer_layer):
    path = shared_dir / "tokenizers" / "bert-base-cased"
    for padding in ("longest", False):
        output = tokenizer_layer(path, padding=padding, return_offsets_mapping=True)([])
        assert output["offset_mapping"].shape[0] == 0
    plain = tokenizer_layer(path)(["a b"])
    assert "offset_mapping" not in plain


def test_offset_unit_is_checked(shared_dir):
    with pytest.raises(ValueError, match="offset_unit"):
        TokenizerLayer.from_pretrained(
            shared_dir / "tokenizers" / "bert-base-cased",
            return_offsets_mapping=True,
            offset_unit="word",
        )


def test_export_with_offsets_passes_the_self_check(shared_dir, hf_tokenizer, tmp_path):
    """export() audits the ops and reloads the SavedModel in a TensorFlow-only process (TF1
    `serve` loader); what it serves is what HF returns."""
    path = shared_dir / "tokenizers" / "roberta-base"
    served, want = served_and_expected(path, OFFSETS, hf_tokenizer(path), tmp_path)
    assert served == want


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED)
def test_offsets_match_hf_on_the_whole_corpus(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    """Every course text, untruncated and unpadded: ids, offsets, word ids and the rest."""
    path = shared_dir / "tokenizers" / name
    layer = tokenizer_layer(path, padding=False, truncation=False, **OFFSETS)
    check_annotations(
        layer,
        hf_tokenizer(path),
        corpus,
        batch_size=512,
        padding=False,
        truncation=False,
        return_offsets_mapping=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED)
def test_every_tokenizer_strategy_and_padding_offsets_match_hf(
    name, shared_dir, corpus, hf_tokenizer, tokenizer_layer
):
    path = shared_dir / "tokenizers" / name
    texts = corpus[::OFFSET_STRIDE] + edge_texts(hf_tokenizer(path))
    for combo in FULL_COMBOS:
        run_combo(path, hf_tokenizer, tokenizer_layer, texts, shifted(texts, 11), combo, OFFSETS)
