"""Decoding in the graph: `decoders/` against tokenizers' decoders, and `DetokenizerLayer`
against transformers' `batch_decode` on every shared tokenizer."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from samples import sample, slow_beyond
from tokenizers import Tokenizer

from tfpipe.export import runtime_compat
from tfpipe.export.graph_audit import foreign_ops, graph_op_types
from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.decoders import Decoder
from tfpipe.tokenization.detokenizer_layer import DetokenizerLayer

WORDPIECE = {"type": "WordPiece", "prefix": "##", "cleanup": True}
LLAMA = {
    "type": "Sequence",
    "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0},
    ],
}
DECODERS = {
    "wordpiece": WORDPIECE,
    "wordpiece-no-cleanup": {"type": "WordPiece", "prefix": "@@", "cleanup": False},
    "byte-level": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                   "use_regex": True},
    "metaspace": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
    "metaspace-first": {"type": "Metaspace", "replacement": "_", "prepend_scheme": "first"},
    "metaspace-never": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never"},
    "metaspace-legacy": {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True},
    "bpe": {"type": "BPEDecoder", "suffix": "</w>"},
    "llama": LLAMA,
    "byte-fallback": {"type": "ByteFallback"},
    "strip": {"type": "Strip", "content": "x", "start": 2, "stop": 1},
    "replace-regex": {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"},
    "replace-string": {"type": "Replace", "pattern": {"String": "ab"}, "content": "\\1$0"},
}
# Rows of tokens for every decoder: the edge cases each one has (prefixes, cleanup patterns,
# byte tokens that are invalid UTF-8, characters outside the byte-level alphabet, empty rows).
TOKEN_ROWS = [
    [],
    [""],
    ["hello", "##world", "##", "!", "do", "n't", "do not", " .", "'", "s", "' ", "x"],
    ["\u2581Hello", "\u2581wor", "ld\u2581", "\u2581\u2581", "_a_b", "</w>"],
    ["a</w>", "b</w>c</w>", "</w>", "d"],
    ["\u0120Hello", "\u0120w\u00c3\u00a9", "\u00c3", "\u0120", "<s>", "\u00e9\u00e8",
     "\u65e5\u672c"],
    ["<0x41>", "<0x+F>", "<0xc3>", "<0xA9>", "a", "<0xC3>", "<0xED>", "<0xA0>", "<0x80>"],
    ["<0xF0>", "<0x9F>", "<0x91>", "<0x8D>", "<0xC0>", "<0x80>", "<0x4g>", "<0x041>", "<0xFF>"],
    ["xxax", "xx", "x", "axxa", "xxx", "\u2581x", "  a ", "ab12cd345", "abab"],
    ["\u2581<0xE6>", "<0x97>", "<0xA5>", "\u2581\u2581b", " c"],
]


def reference_decode(component: dict | None, tokens: list[str]) -> str | None:
    """tokenizers' decoding of the tokens, None where it panics."""
    document = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "pre_tokenizer": None, "post_processor": None,
        "decoder": component,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"},
    }
    reference = Tokenizer.from_str(json.dumps(document))
    if component is None:
        return " ".join(tokens)
    try:
        return reference.decoder.decode(tokens)
    except BaseException as error:  # a Rust panic is a BaseException
        if type(error).__name__ != "PanicException":
            raise
        return None


def decoded_rows(component: dict | None, rows: list[list[str]]) -> list[str]:
    tokens = tf.ragged.constant(rows, dtype=tf.string, row_splits_dtype=tf.int64, inner_shape=())
    return [text.decode() for text in Decoder(component)(tokens).numpy()]


@pytest.mark.parametrize("name", [*DECODERS, "none"])
def test_decoder_matches_tokenizers_on_edge_case_tokens(name):
    component = DECODERS.get(name)
    rows = TOKEN_ROWS + [row[::-1] for row in TOKEN_ROWS] + [[t] for r in TOKEN_ROWS for t in r]
    expected = [reference_decode(component, row) for row in rows]
    decoded = decoded_rows(component, rows)
    answered = [
        (got, want) for got, want in zip(decoded, expected, strict=True) if want is not None
    ]
    assert len(answered) > len(rows) // 2
    assert [got for got, _ in answered] == [want for _, want in answered]


def test_strip_where_tokenizers_panics_gives_an_empty_token():
    """tokenizers panics when a token's cuts cross (or on an empty token with stop > 0)."""
    strip = DECODERS["strip"]
    for token in ("xx", "x", ""):
        assert reference_decode(strip, ["a", token]) is None
    assert decoded_rows(strip, [["a", "xx"], ["x"], ["", "b"]]) == ["a", "", "b"]


def test_decoder_matches_tokenizers_on_random_byte_tokens():
    rng = random.Random(0)
    pool = [f"<0x{b:02X}>" for b in range(256)] + ["a", "\u2581b", "<0x+1>", "é"]
    rows = [[rng.choice(pool) for _ in range(rng.randrange(8))] for _ in range(400)]
    for component in (LLAMA, {"type": "ByteFallback"}):
        assert decoded_rows(component, rows) == [reference_decode(component, r) for r in rows]


def test_unknown_decoder_is_refused_at_build_naming_it():
    with pytest.raises(UnsupportedComponentError, match="MadeUpDecoder"):
        Decoder({"type": "Sequence", "decoders": [{"type": "MadeUpDecoder"}]})


SHARED_TOKENIZERS = (
    "albert-base-v2", "bert-base-cased", "bert-base-chinese", "bert-base-uncased",
    "deberta-v3-small", "distilbert-base-uncased", "gpt-neox-20b", "gpt2",
    "hf-fixture-test-sentencepiece", "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos", "llama-2", "roberta-base", "t5-small",
)
# One per decoder type in the default run: WordPiece, ByteLevel, Metaspace (legacy and
# prepend_scheme), and the Replace/ByteFallback/Fuse/Strip sequence.
DEFAULT_TOKENIZERS = ("bert-base-uncased", "roberta-base", "t5-small", "albert-base-v2", "llama-2")


def id_rows(hf, texts: list[str], seed: int) -> list[list[int]]:
    """The texts' ids, then random ids (invalid byte sequences, special tokens anywhere)."""
    rows = hf(texts, truncation=True, max_length=128)["input_ids"]
    rng = random.Random(seed)
    size = len(hf)  # 17 ms: transformers builds the whole vocabulary for it
    return rows + [[rng.randrange(size) for _ in range(rng.randrange(16))] for _ in rows]


@pytest.mark.parametrize("name", slow_beyond(SHARED_TOKENIZERS, DEFAULT_TOKENIZERS))
@pytest.mark.parametrize("skip_special_tokens", [False, True])
def test_detokenizer_matches_batch_decode(name, skip_special_tokens, shared_dir, corpus,
                                          hf_tokenizer):
    path = shared_dir / "tokenizers" / name
    hf = hf_tokenizer(path)
    layer = DetokenizerLayer.from_pretrained(path, skip_special_tokens=skip_special_tokens)
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)
    decode = tf.function(layer.__call__, input_signature=[spec])
    texts = sample(corpus, 256)
    for start in range(0, len(texts), 256):
        rows = id_rows(hf, texts[start:start + 256], start)
        ragged = tf.ragged.constant(rows, dtype=tf.int32, row_splits_dtype=tf.int64)
        ours = [text.decode() for text in decode(ragged).numpy()]
        expected = hf.batch_decode(rows, skip_special_tokens=skip_special_tokens)
        mismatches = [(r, e, o) for r, e, o in zip(rows, expected, ours, strict=True) if e != o]
        assert not mismatches, f"{len(mismatches)} of {len(rows)}, first: {mismatches[0]}"


def padded(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(map(len, rows), default=0)
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for index, row in enumerate(rows):
        ids[index, : len(row)], mask[index, : len(row)] = row, 1
    return ids, mask


def test_padding_is_ignored_through_the_attention_mask(minilm_path, hf_tokenizer):
    hf = hf_tokenizer(minilm_path)
    rows = hf(["Hello, world!", "", "a longer sentence, isn't it?"])["input_ids"]
    ids, mask = padded(rows, hf.pad_token_id)
    layer = DetokenizerLayer.from_pretrained(minilm_path)
    ours = [text.decode() for text in layer(ids, attention_mask=mask).numpy()]
    assert ours == hf.batch_decode(rows)
    with_padding = [text.decode() for text in layer(ids).numpy()]
    assert with_padding == hf.batch_decode(ids.tolist())


def test_ids_without_a_token_are_dropped_as_tokenizers_drops_them(minilm_path, hf_tokenizer):
    hf = hf_tokenizer(minilm_path)
    rows = [[101, len(hf), 7592, 10**6, 102], [2**31 - 1]]
    layer = DetokenizerLayer.from_pretrained(minilm_path)
    ragged = tf.ragged.constant(rows, dtype=tf.int32, row_splits_dtype=tf.int64)
    assert [text.decode() for text in layer(ragged).numpy()] == hf.batch_decode(rows)


def test_negative_ids_raise_a_clear_error(minilm_path):
    layer = DetokenizerLayer.from_pretrained(minilm_path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must not be negative"):
        layer(tf.constant([[101, -1]]))


def test_bad_input_raises_a_clear_error(minilm_path):
    layer = DetokenizerLayer.from_pretrained(minilm_path)
    with pytest.raises(TypeError, match="integer token ids"):
        layer(tf.constant([[1.0]]))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="ids \\[batch"):
        layer(tf.constant([1, 2]))


def test_empty_batch_and_empty_rows_decode_to_empty_strings(minilm_path):
    layer = DetokenizerLayer.from_pretrained(minilm_path)
    assert layer(tf.zeros([0, 0], tf.int32)).shape == (0,)
    assert layer(tf.zeros([2, 0], tf.int32)).numpy().tolist() == [b"", b""]


@pytest.mark.parametrize("clean_up", [None, False, True])
def test_clean_up_follows_the_checkpoint_unless_set(minilm_path, hf_tokenizer, clean_up):
    hf = hf_tokenizer(minilm_path)
    rows = hf(["Hello , world ! It 's fine , isn 't it ?"])["input_ids"]
    layer = DetokenizerLayer.from_pretrained(minilm_path, clean_up_tokenization_spaces=clean_up)
    ours = layer(tf.constant(rows)).numpy()[0].decode()
    assert ours == hf.batch_decode(rows, clean_up_tokenization_spaces=clean_up)[0]


def test_get_config_round_trip_decodes_the_same(minilm_path):
    layer = DetokenizerLayer.from_pretrained(minilm_path, skip_special_tokens=True)
    rebuilt = DetokenizerLayer.from_config(layer.get_config())
    ids = tf.constant([[101, 7592, 1010, 2088, 999, 102]])
    assert rebuilt(ids).numpy().tolist() == layer(ids).numpy().tolist()


RELOAD = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    assert "tfpipe" not in sys.modules
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
        signature = meta.signature_def["serving_default"]
        feeds = {signature.inputs[k].name: v for k, v in json.loads(sys.argv[2]).items()}
        fetch = signature.outputs["text"].name
        print(json.dumps([t.decode() for t in session.run(fetch, feeds)]))
""")


def test_export_decodes_in_a_process_without_tfpipe_on_core_ops(shared_dir, hf_tokenizer,
                                                                 tmp_path):
    path = shared_dir / "tokenizers" / "llama-2"
    hf = hf_tokenizer(path)
    layer = DetokenizerLayer.from_pretrained(path)
    specs = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("ids", "attention_mask")]
    serve = tf.function(lambda ids, mask: {"text": layer(ids, attention_mask=mask)},
                        input_signature=specs)
    module = tf.Module()
    module.layer = layer
    tf.saved_model.save(module, str(tmp_path), signatures=serve.get_concrete_function())
    graph_def = serve.get_concrete_function().graph.as_graph_def()
    assert foreign_ops(graph_op_types(graph_def)) == set()
    assert runtime_compat.unsupported_nodes(graph_def, runtime_compat.load_table()) == set()
    rows = id_rows(hf, ["Hello, world! 日本語", "", "naïve café"], 0)
    ids, mask = padded(rows, 0)
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path),
         json.dumps({"ids": ids.tolist(), "attention_mask": mask.tolist()})],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == hf.batch_decode(rows)
