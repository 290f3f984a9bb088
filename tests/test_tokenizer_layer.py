"""TokenizerLayer behaviour beyond plain parity: bad input, edge shapes, serialization, ops."""

from __future__ import annotations

import base64
import gc
import json
import shutil
import subprocess
import sys
import textwrap
import time
import weakref

import pytest
import tensorflow as tf
import tf_keras
from parity import LayerRunner, assert_same_encoding, check_parity, python_text
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tfpipe import TokenizerLayer
from tfpipe.export.graph_audit import foreign_ops, graph_op_types
from tfpipe.tokenization import UnsupportedComponentError, checkpoint
from tfpipe.tokenization.checkpoint import load_reference
from tfpipe.tokenization.compiled import compiled_tokenizer

INVALID_UTF8 = [
    b"\x80",
    b"abc\x80def",
    b"\xbf\xbf\xbf",
    b"ab\xe4\xbd",
    b"\xe4\xbd hello",
    b"\xf0\x9f\x98 x",
    b"a\xe2\x82b",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf\xed\xb0\x80",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xff",
    b"\xfe\xff",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"caf\xe9 cr\xe8me",
    b"na\xefve [MASK]\xff[SEP]",
    b"[MA\xffSK]",
    b"\xe4\xbd\xa0\xe5\xa5",
    "\ufffd valid replacement char".encode(),
    "안녕하세요".encode()[:-1],
    "👍🏽".encode()[:-2],
]


@pytest.mark.parametrize("padding", ["longest", False])
def test_invalid_utf8_is_decoded_like_python_replace(minilm, padding):
    layer, hf = minilm(padding=padding)
    check_parity(layer, hf, INVALID_UTF8, padding=padding, truncation=True)
    check_parity(layer, hf, INVALID_UTF8, INVALID_UTF8[::-1], padding=padding, truncation=True)


@pytest.fixture(scope="module")
def control_texts() -> list[str]:
    """Every C0/C1 control, DEL and NUL, alone and inside words."""
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
    return controls + [f"a{c}b" for c in controls] + [f"x {c} y" for c in controls]


def test_control_characters_and_nul_match_hf(minilm, control_texts):
    layer, hf = minilm()
    check_parity(layer, hf, control_texts, padding="longest", truncation=True)


@pytest.mark.parametrize("padding", ["longest", "max_length", False])
def test_empty_strings_give_only_special_tokens(minilm, padding):
    layer, hf = minilm(padding=padding, max_length=8)
    kwargs = dict(padding=padding, truncation=True, max_length=8)
    check_parity(layer, hf, ["", "", " ", "a"], **kwargs)
    check_parity(layer, hf, ["", "a", ""], ["", "", "b"], **kwargs)


@pytest.mark.parametrize(
    ("padding", "width"), [("longest", 0), ("max_length", 16), (False, None)]
)
@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
def test_empty_batch_gives_zero_rows(minilm, padding, width, pair):
    """HF raises on an empty list; the layer returns zero rows: [0, 0] when padding to the
    longest row, [0, max_length] when padding to max_length, zero ragged rows otherwise."""
    layer, hf = minilm(padding=padding, max_length=16)
    output = layer([], [] if pair else None)
    assert sorted(output) == sorted(hf(["x"], ["y"] if pair else None).keys())
    for value in output.values():
        assert value.dtype == tf.int32
        if width is None:
            assert isinstance(value, tf.RaggedTensor)
            assert value.nrows() == 0
        else:
            assert not isinstance(value, tf.RaggedTensor)
            assert value.shape == (0, width)


@pytest.fixture(scope="module")
def megabyte_texts() -> list[str]:
    words = "hello wörld 안녕하세요 東京 Привет [MASK] tokenization, ok. 👍🏽 "
    prose = words * (1_000_000 // len(words.encode()) + 1)
    return [prose, "a" * 1_000_000, "short text", ""]


@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
def test_megabyte_string_is_truncated_like_hf_in_bounded_time(minilm, megabyte_texts, pair):
    assert len(megabyte_texts[0].encode()) > 1_000_000
    layer, hf = minilm()
    pairs = megabyte_texts[::-1] if pair else None
    layer(["warm up"], ["warm up"] if pair else None)
    start = time.perf_counter()
    output = layer(megabyte_texts, pairs)
    elapsed = time.perf_counter() - start
    expected = hf(megabyte_texts, pairs, padding="longest", truncation=True)
    assert_same_encoding(output, expected, megabyte_texts, pairs)
    assert elapsed < 20, f"{elapsed:.1f} s to tokenize 1 MB"


@pytest.mark.parametrize(
    "bad_input",
    [
        tf.constant("a scalar"),
        tf.constant([["rank"], ["two"]]),
        tf.constant([1, 2]),
        tf.constant([1.5]),
    ],
    ids=["scalar", "rank-2", "int", "float"],
)
def test_wrong_rank_or_dtype_raises_a_clear_error(minilm, bad_input):
    layer = minilm()[0].layer
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)):
        layer(bad_input)
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)):
        layer(tf.constant(["fine"]), text_pair=bad_input)


def test_eager_call_matches_hf(minilm, generated_texts):
    layer, hf = minilm(max_length=64)
    texts, pairs = generated_texts[:300], generated_texts[300:600]
    eager = layer.layer(tf.constant(texts), text_pair=tf.constant(pairs))
    expected = hf(texts, pairs, padding="longest", truncation=True, max_length=64)
    assert_same_encoding(eager, expected, texts, pairs)


@pytest.mark.parametrize("max_length", [2**31 // 64, 10**9, 10**10])
def test_max_length_past_int32_graph_limits_encodes_like_hf(minilm, generated_texts, max_length):
    """Budgets whose early-stop cut or token count would not fit an int32 tensor."""
    layer, hf = minilm(max_length=max_length)
    texts, pairs = generated_texts[:50], generated_texts[50:100]
    for second in (None, pairs):
        expected = hf(texts, second, padding="longest", truncation=True, max_length=max_length)
        assert_same_encoding(layer(texts, second), expected, texts, second)


def test_tokenizer_json_file_path_matches_checkpoint_folder(minilm_path, generated_texts):
    texts = generated_texts[:300]
    from_file = TokenizerLayer.from_pretrained(str(minilm_path / "tokenizer.json"), max_length=128)
    from_folder = TokenizerLayer.from_pretrained(str(minilm_path), max_length=128)
    got, want = from_file(tf.constant(texts)), from_folder(tf.constant(texts))
    assert sorted(got) == sorted(want)
    for key in want:
        tf.debugging.assert_equal(got[key], want[key])


@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(max_length=32, padding="max_length", truncation="longest_first"),
        dict(padding=False, truncation=False),
        dict(max_length=128, pad_to_multiple_of=8, return_token_type_ids=False),
    ],
    ids=["default", "max_length", "unpadded", "multiple-of-8"],
)
def test_get_config_round_trip_gives_identical_outputs(minilm_path, generated_texts, config):
    texts, pairs = generated_texts[:200], generated_texts[200:400]
    layer = TokenizerLayer.from_pretrained(str(minilm_path), **config)
    layer_config = layer.get_config()
    json.dumps(layer_config)
    clone = TokenizerLayer.from_config(layer_config)
    assert clone.get_config() == layer_config
    for text_pair in (None, tf.constant(pairs)):
        got = clone(tf.constant(texts), text_pair=text_pair)
        want = layer(tf.constant(texts), text_pair=text_pair)
        assert sorted(got) == sorted(want)
        for key in want:
            if isinstance(want[key], tf.RaggedTensor):
                assert got[key].to_list() == want[key].to_list()
            else:
                tf.debugging.assert_equal(got[key], want[key])


RELOAD_SCRIPT = textwrap.dedent(
    """
    import base64, json, sys
    import tensorflow as tf

    export_dir, calls_file = sys.argv[1], sys.argv[2]
    loaded = tf.saved_model.load(export_dir)
    results = {}
    for label, (signature, kwargs) in json.load(open(calls_file)).items():
        kwargs = {
            k: tf.constant([base64.b64decode(s) for s in v], dtype=tf.string, shape=[len(v)])
            for k, v in kwargs.items()
        }
        outputs = loaded.signatures[signature](**kwargs)
        results[label] = {k: [v.shape.as_list(), v.numpy().tolist()] for k, v in outputs.items()}
    assert not any(m.split(".")[0] == "tfpipe" for m in sys.modules), "tfpipe was imported"
    json.dump(results, sys.stdout)
    """
)


def reload_and_call(export_dir, calls: dict[str, tuple[str, dict]], tmp_path) -> dict:
    """Load the SavedModel in a fresh interpreter that never imports tfpipe and call it.

    ``calls`` maps a label to (signature name, {input name: list of bytes}); returns, per
    label, {output name: tf.Tensor}.
    """
    encoded = {
        label: (signature, {k: [base64.b64encode(s).decode() for s in v] for k, v in kw.items()})
        for label, (signature, kw) in calls.items()
    }
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps(encoded))
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(export_dir), str(calls_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        label: {k: tf.reshape(tf.constant(v, tf.int32), shape) for k, (shape, v) in out.items()}
        for label, out in json.loads(proc.stdout).items()
    }


SAVED_TEXTS = [
    "Hello, world!",
    "",
    "a[MASK]b 안녕하세요 東京 👍🏽",
    "Straße ΣΑΣ İstanbul",
    "x" * 500,
]
SAVED_PAIRS = ["pair one", "second [SEP] text", "", "ok", "y " * 300]


def as_bytes(texts: list[str]) -> list[bytes]:
    return [t.encode() for t in texts] + [b"bad \xff utf-8 \xed\xa0\x80"]


def test_saved_model_module_reloads_without_tfpipe(minilm_path, hf_tokenizer, tmp_path):
    layer = TokenizerLayer.from_pretrained(str(minilm_path), max_length=64)
    module = tf.Module()
    module.tokenizer = layer
    spec = tf.TensorSpec([None], tf.string)
    single = tf.function(lambda text: layer(text), input_signature=[spec])
    pair = tf.function(lambda text, text_pair: layer(text, text_pair=text_pair),
                       input_signature=[spec, spec])
    export_dir = tmp_path / "module"
    tf.saved_model.save(module, str(export_dir), signatures={
        "serving_default": single.get_concrete_function(),
        "pair": pair.get_concrete_function(),
    })
    texts, pairs = as_bytes(SAVED_TEXTS), as_bytes(SAVED_PAIRS)
    results = reload_and_call(export_dir, {
        "single": ("serving_default", {"text": texts}),
        "pair": ("pair", {"text": texts, "text_pair": pairs}),
        "empty": ("serving_default", {"text": []}),
    }, tmp_path)
    hf = hf_tokenizer(minilm_path)
    decoded, decoded_pairs = [python_text(t) for t in texts], [python_text(t) for t in pairs]
    kwargs = dict(padding="longest", truncation=True, max_length=64)
    assert_same_encoding(results["single"], hf(decoded, **kwargs), texts)
    assert_same_encoding(results["pair"], hf(decoded, decoded_pairs, **kwargs), texts, pairs)
    assert {k: v.shape for k, v in results["empty"].items()} == {
        k: (0, 0) for k in results["single"]
    }


def test_saved_model_keras_model_reloads_without_tfpipe(minilm_path, hf_tokenizer, tmp_path):
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    model = tf_keras.Model(text, TokenizerLayer.from_pretrained(str(minilm_path))(text))
    export_dir = tmp_path / "keras"
    serve = tf.function(lambda text: model(text),
                        input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    tf.saved_model.save(model, str(export_dir), signatures=serve.get_concrete_function())
    texts = as_bytes(SAVED_TEXTS)
    results = reload_and_call(export_dir, {"single": ("serving_default", {"text": texts})},
                              tmp_path)
    hf = hf_tokenizer(minilm_path)
    expected = hf([python_text(t) for t in texts], padding="longest", truncation=True)
    assert_same_encoding(results["single"], expected, texts)


@pytest.mark.parametrize(
    "config", [dict(), dict(padding=False), dict(padding="max_length", max_length=32)],
    ids=["longest", "unpadded", "max_length"],
)
def test_graph_uses_only_stock_tensorflow_ops(minilm, config):
    layer = minilm(**config)[0].layer
    spec = tf.TensorSpec([None], tf.string)
    for fn, specs in (
        (lambda text: layer(text), [spec]),
        (lambda text, pair: layer(text, text_pair=pair), [spec, spec]),
    ):
        graph_def = tf.function(fn).get_concrete_function(*specs).graph.as_graph_def()
        ops = graph_op_types(graph_def)
        assert ops, "empty graph"
        assert foreign_ops(ops) == set()


def assert_build_refuses_component(minilm_path, folder, section: str, component: dict,
                                   name: str) -> None:
    """MiniLM's tokenizer.json with ``component`` in ``section`` fails to build, naming it."""
    tokenizer_json = json.loads((minilm_path / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer_json[section] = component
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    with pytest.raises(UnsupportedComponentError, match=name):
        TokenizerLayer.from_pretrained(str(folder / "tokenizer.json"), padding=False)


@pytest.mark.parametrize(
    ("section", "component", "name"),
    [
        ("normalizer", {"type": "MadeUpNormalizer"}, "MadeUpNormalizer"),
        ("pre_tokenizer", {"type": "MadeUpPreTokenizer"}, "MadeUpPreTokenizer"),
        ("post_processor", {"type": "MadeUpProcessor"}, "MadeUpProcessor"),
        ("normalizer", {"type": "Sequence", "normalizers": [{"type": "MadeUpNormalizer"}]},
         "MadeUpNormalizer"),
    ],
    ids=["normalizer", "pre_tokenizer", "post_processor", "nested-normalizer"],
)
def test_unknown_component_raises_at_build_naming_it(
    minilm_path, tmp_path, section, component, name
):
    assert_build_refuses_component(minilm_path, tmp_path / "ckpt", section, component, name)


def test_bpe_with_dropout_raises_at_build(tmp_path):
    tok = Tokenizer(models.BPE(dropout=0.1, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["hello world", "tokenizers are fun"] * 10,
                            trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>"]))
    folder = tmp_path / "bpe"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    with pytest.raises(UnsupportedComponentError, match="BPE|dropout"):
        TokenizerLayer.from_pretrained(str(folder / "tokenizer.json"), padding=False)


def test_unsupported_component_error_is_a_value_error():
    assert issubclass(UnsupportedComponentError, ValueError)


def check_saved_model_of_both(first, second, texts: list[str], tmp_path) -> None:
    """One Keras model holding both layers saves, reloads and serves what it computes."""
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    model = tf_keras.Model(
        text, {"first": first(text)["input_ids"], "second": second(text)["input_ids"]}
    )
    serve = tf.function(model, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    tf.saved_model.save(model, str(tmp_path / "both"), signatures=serve.get_concrete_function())
    loaded = tf.saved_model.load(str(tmp_path / "both"))
    served = loaded.signatures["serving_default"](tf.constant(texts))
    in_memory = model(tf.constant(texts))
    for name in ("first", "second"):
        tf.debugging.assert_equal(served[name], in_memory[name])


def test_layers_differing_in_padding_and_length_share_one_compiled_tokenizer(
    minilm_path, hf_tokenizer, generated_texts, tmp_path
):
    tokenizer_json, settings = load_reference(minilm_path)
    # A trailing newline: the same tokenizer, a document no other test's layer holds.
    tokenizer_json += "\n"
    longest = TokenizerLayer(tokenizer_json, settings, max_length=128)
    fixed = TokenizerLayer(tokenizer_json, settings, padding="max_length", max_length=32)
    assert longest._compiled is fixed._compiled and longest.pipeline is fixed.pipeline
    assert longest._encode is fixed._encode
    hf, texts, pairs = hf_tokenizer(minilm_path), generated_texts[:300], generated_texts[300:600]
    for layer, padding, max_length in ((longest, "longest", 128), (fixed, "max_length", 32)):
        options = dict(padding=padding, truncation=True, max_length=max_length)
        check_parity(LayerRunner(layer), hf, texts, **options)
        check_parity(LayerRunner(layer), hf, texts, pairs, **options)

    check_saved_model_of_both(longest, fixed, texts[:20], tmp_path)
    compiled = weakref.ref(longest._compiled)
    del longest, fixed, layer
    gc.collect()
    assert compiled() is None, "the compiled tokenizer outlived every layer using it"


def test_word_token_limited_encoders_are_kept_per_limit(tmp_path):
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(["hello world", "tokenizers are fun", "unigram pieces"] * 20,
                            trainers.UnigramTrainer(vocab_size=40, special_tokens=["<unk>"],
                                                    unk_token="<unk>"))
    compiled = compiled_tokenizer(tok.to_str())
    assert compiled.pipeline.limits_word_tokens
    assert compiled.encoder(16) is compiled.encoder(16)
    assert compiled.encoder(16) is not compiled.encoder(32)
    assert compiled.encoder(None) is not compiled.encoder(16)


def test_reference_loads_are_remembered_until_a_file_changes(minilm_path, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, folder / name)
    first = load_reference(folder)
    read, loads = checkpoint._read_reference, []
    monkeypatch.setattr(checkpoint, "_read_reference", lambda path: loads.append(1) or read(path))
    assert load_reference(folder) == first and not loads
    first[1]["model_input_names"].append("changed by a caller")
    assert load_reference(folder) == load_reference(str(folder)) != first
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 77}))
    assert load_reference(folder)[1]["model_max_length"] == 77 and loads
