"""`tfpipe.keras.TokenizerLayer` (Keras 3): HF parity, functional models, `.keras` files,
`tf.data`, export with tfpipe's self-check, and the two Keras kept apart.

Runs in a test process of its own (tests/run_isolated.py), without tf-keras layers.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from parity import LayerRunner, assert_same_encoding, check_parity, shifted  # noqa: E402
from samples import sample  # noqa: E402
from texts import EDGE_CASES  # noqa: E402

from tfpipe.keras import ExportError, TokenizerLayer, export, verify_saved_model  # noqa: E402
from tfpipe.tokenization.compiled import compiled_tokenizer  # noqa: E402

TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "So have I!", ""]
# Layer options and the HF call arguments they mirror.
CONFIGS = [
    ({}, dict(padding="longest", truncation=True)),
    (dict(max_length=24, padding="max_length"),
     dict(padding="max_length", truncation=True, max_length=24)),
    (dict(max_length=16, padding=False), dict(truncation=True, max_length=16)),
    (dict(max_length=20, truncation="only_second", pad_to_multiple_of=4),
     dict(padding="longest", truncation="only_second", max_length=20, pad_to_multiple_of=4)),
]


@pytest.fixture(scope="module")
def texts(generated_texts) -> list[str]:
    return list(EDGE_CASES) + sample(generated_texts, 200)


@pytest.fixture(scope="module")
def layer(minilm_path) -> TokenizerLayer:
    return TokenizerLayer.from_pretrained(minilm_path, max_length=32, name="tokenizer")


@pytest.mark.parametrize(("options", "hf_kwargs"), CONFIGS)
def test_matches_the_hf_fast_tokenizer(minilm_path, hf_tokenizer, texts, options, hf_kwargs):
    layer = TokenizerLayer.from_pretrained(minilm_path, **options)
    hf = hf_tokenizer(minilm_path)
    if hf_kwargs["truncation"] != "only_second":
        check_parity(LayerRunner(layer), hf, texts, **hf_kwargs)
    pairs = shifted(texts, 7)
    keep = [i for i, (a, b) in enumerate(zip(texts, pairs, strict=True))
            if len(hf(a, truncation=False)["input_ids"]) < 12]  # only_second keeps the first
    check_parity(LayerRunner(layer), hf, [texts[i] for i in keep], [pairs[i] for i in keep],
                 **hf_kwargs)


def test_extra_outputs_match_hf(minilm_path, hf_tokenizer, texts):
    layer = TokenizerLayer.from_pretrained(
        minilm_path, max_length=24, return_special_tokens_mask=True,
        return_offsets_mapping=True, return_word_ids=True)
    rows = texts[:60]
    outputs = layer(tf.constant(rows))
    expected = hf_tokenizer(minilm_path)(
        rows, padding="longest", truncation=True, max_length=24,
        return_special_tokens_mask=True, return_offsets_mapping=True)
    for name in ("input_ids", "special_tokens_mask", "offset_mapping"):
        np.testing.assert_array_equal(outputs[name], np.asarray(expected[name]), err_msg=name)
    word_ids = [[-1 if w is None else w for w in expected.word_ids(i)] for i in range(len(rows))]
    np.testing.assert_array_equal(outputs["word_ids"], word_ids)


def test_shares_the_compiled_tokenizer_core(layer):
    """The tf-keras layer wraps the same compiled tokenizer (one per tokenizer.json)."""
    assert layer._compiled is compiled_tokenizer(layer.tokenizer_json)
    assert isinstance(layer, keras.layers.Layer)
    assert not any(module.startswith("tf_keras") for module in type(layer).__module__.split())


def tokenizer_model(layer: TokenizerLayer) -> keras.Model:
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model({"text": text}, layer(text), name="tokenizer_model")


def test_functional_model_and_keras_file_round_trip(layer, minilm_path, hf_tokenizer, tmp_path):
    model = tokenizer_model(layer)
    expected = hf_tokenizer(minilm_path)(TEXTS, padding="longest", truncation=True, max_length=32)
    assert_same_encoding(model({"text": tf.constant(TEXTS)}), expected, TEXTS)
    model.save(tmp_path / "tokenizer.keras")
    reloaded = keras.saving.load_model(tmp_path / "tokenizer.keras")
    restored = reloaded.get_layer("tokenizer")
    assert isinstance(restored, TokenizerLayer)
    assert restored.get_config() == layer.get_config()
    assert_same_encoding(reloaded({"text": tf.constant(TEXTS)}), expected, TEXTS)


def test_maps_batches_of_a_tf_data_dataset(layer, minilm_path, hf_tokenizer, texts):
    hf = hf_tokenizer(minilm_path)
    texts = texts[:40]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(16).map(layer)
    for index, batch in enumerate(dataset):
        rows = texts[index * 16 : (index + 1) * 16]
        assert_same_encoding(batch, hf(rows, padding="longest", truncation=True, max_length=32),
                             rows)


@pytest.mark.slow  # test_keras3_pipelines.py exports a Keras 3 pipeline by default
def test_tfpipe_export_self_checks_a_keras3_model(layer, tmp_path):
    exported = export(tokenizer_model(layer), tmp_path / "saved_models" / "tokenizer" / "1")
    assert exported.metadata["keras_version"] == keras.__version__
    assert exported.metadata["max_length"] == 32
    assert not {op for op in exported.op_types if "PyFunc" in op}


@pytest.mark.slow  # the default run exports a Keras 3 pipeline with tfpipe.export
def test_keras_model_export_passes_the_self_check(layer, minilm_path, hf_tokenizer, tmp_path):
    model = tokenizer_model(layer)
    model.export(str(tmp_path / "exported"), verbose=False)
    report = verify_saved_model(model, tmp_path / "exported", texts=TEXTS)
    assert not report["foreign_ops"] and not report["imported_modules"]
    served = report["outputs"]["serving_default"]
    expected = hf_tokenizer(minilm_path)(TEXTS, padding="longest", truncation=True, max_length=32)
    np.testing.assert_array_equal(served["input_ids"], expected["input_ids"])


@pytest.mark.slow
def test_export_archive_endpoint_passes_the_self_check(layer, tmp_path):
    """model.export is an ExportArchive too; this one names its endpoint's input."""
    model = tokenizer_model(layer)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda text: model({"text": text}),
                         input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    archive.write_out(str(tmp_path / "archive"), verbose=False)
    verify_saved_model(model, tmp_path / "archive", texts=TEXTS)
    unnamed = keras.export.ExportArchive()
    unnamed.track(model)
    unnamed.add_endpoint("serve", lambda strings: model({"text": strings}),
                         input_signature=[tf.TensorSpec([None], tf.string)])
    unnamed.write_out(str(tmp_path / "unnamed"), verbose=False)
    with pytest.raises(ExportError, match="serving_default takes inputs"):
        verify_saved_model(model, tmp_path / "unnamed", texts=TEXTS)


def test_refuses_another_keras_backend(minilm_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="TensorFlow backend"):
        TokenizerLayer.from_pretrained(minilm_path)


def test_tfpipe_keras_modules_import_no_tf_keras_layers():
    """Nor transformers' TF (tf-keras) models; `import tfpipe` is checked in a fresh
    process by test_keras3_pipelines.py."""
    import ast
    from pathlib import Path

    import tfpipe.keras

    forbidden = ("tf_keras", "transformers", "tfpipe.heads", "tfpipe.transformer",
                 "tfpipe.pipelines", "tfpipe.build_context", "tfpipe.tokenization.tokenizer_layer")
    for path in Path(tfpipe.keras.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [
                    alias.name for alias in node.names]
                assert not [n for n in names if n and n.startswith(forbidden)], (path, names)
