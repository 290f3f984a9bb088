"""TransformerLayer: safe offline loading and parity with the transformers TF model."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tf_keras
from disk_cache import cached_folder, code_digest
from model_fixtures import (
    SENTENCES,
    classifier_checkpoint,
    hf_sequence_classifier,
    hf_tokenizer,
    minilm_path,
    run,
    work_dir,
)

from tfpipe.pipelines import pipeline
from tfpipe.transformer import ModelLoadError, TransformerLayer


def encoded(path, texts=SENTENCES):
    return dict(hf_tokenizer(path)(texts, padding=True, truncation=True, return_tensors="tf"))


def test_classification_layer_returns_the_hf_model_logits():
    path = classifier_checkpoint()
    layer = TransformerLayer.from_pretrained(path, "text-classification")
    inputs = encoded(path)
    expected = hf_sequence_classifier(path)(**inputs).logits.numpy()
    np.testing.assert_allclose(layer(inputs).numpy(), expected, atol=1e-6)
    assert layer.labels == ["negative", "neutral", "positive"]
    assert not layer.is_multi_label


def test_tf_format_safetensors_load_like_the_h5_weights():
    path = classifier_checkpoint()
    safetensors_path = work_dir() / "classifier-safetensors"
    shutil.copytree(path, safetensors_path)
    hf_sequence_classifier(path).save_pretrained(str(safetensors_path), safe_serialization=True)
    (safetensors_path / "tf_model.h5").unlink()
    inputs = encoded(path)
    from_h5 = TransformerLayer.from_pretrained(path, "text-classification")(inputs)
    from_safetensors = TransformerLayer.from_pretrained(safetensors_path, "text-classification")
    np.testing.assert_allclose(from_safetensors(inputs).numpy(), from_h5.numpy(), atol=1e-6)


def test_pytorch_format_safetensors_load_without_torch():
    from safetensors import safe_open
    from transformers import TFAutoModel

    with safe_open(str(minilm_path() / "model.safetensors"), framework="np") as weights:
        assert weights.metadata()["format"] == "pt"
    layer = TransformerLayer.from_pretrained(minilm_path(), "feature-extraction")
    inputs = encoded(minilm_path())
    expected = TFAutoModel.from_pretrained(str(minilm_path()))(**inputs).last_hidden_state
    real = inputs["attention_mask"].numpy() > 0
    np.testing.assert_allclose(layer(inputs).numpy()[real], expected.numpy()[real], atol=1e-5)
    assert "torch" not in sys.modules


def test_encoder_checkpoint_gets_a_new_classification_head():
    layer = TransformerLayer.from_pretrained(
        minilm_path(), "text-classification", num_labels=3, allow_untrained_head=True
    )
    logits = layer(encoded(minilm_path()))
    assert logits.shape == (len(SENTENCES), 3)
    assert layer.labels == ["LABEL_0", "LABEL_1", "LABEL_2"]


def test_from_config_rebuilds_the_same_architecture():
    path = classifier_checkpoint()
    layer = TransformerLayer.from_pretrained(path, "text-classification")
    inputs = encoded(path)
    rebuilt = TransformerLayer.from_config(json.loads(json.dumps(layer.get_config())))
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_allclose(rebuilt(inputs).numpy(), layer(inputs).numpy(), atol=1e-6)
    assert rebuilt.labels == layer.labels


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_batches_without_rows_or_tokens_keep_their_shape(task):
    """The attention kernels reject a [0, 0] batch: an empty batch, or rows without tokens,
    still get outputs of the right shape (rows padded in and cut off again)."""
    layer = TransformerLayer.from_pretrained(classifier_checkpoint(), task)
    for rows, width in ((0, 0), (2, 0), (0, 5)):
        zeros = np.zeros([rows, width], np.int32)
        inputs = {name: zeros for name in ("input_ids", "attention_mask", "token_type_ids")}
        output = layer(inputs).numpy()
        if task == "text-classification":
            assert output.shape == (rows, 3)
        else:
            assert output.shape == (rows, width, layer.hidden_size)
        assert np.isfinite(output).all()


def test_padding_for_empty_batches_leaves_real_batches_bit_identical():
    path = classifier_checkpoint()
    # The whole batch: packed or chunked rows are the model's up to float rounding only.
    layer = TransformerLayer.from_pretrained(path, "text-classification", max_chunk_tokens=None)
    inputs = encoded(path)
    np.testing.assert_array_equal(
        layer(inputs).numpy(), layer.hf_model(inputs, training=False).logits.numpy()
    )


def checkpoint_with(tmp_path, weights_file: str | None):
    shutil.copy(classifier_checkpoint() / "config.json", tmp_path / "config.json")
    if weights_file:
        (tmp_path / weights_file).write_bytes(b"not a real pickle: must never be opened")
    return tmp_path


def test_pickled_weights_are_refused_without_allow_pickle(tmp_path):
    path = checkpoint_with(tmp_path, "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        TransformerLayer.from_pretrained(path, "text-classification")


@pytest.mark.skipif("torch" in sys.modules, reason="torch is installed")
def test_allowed_pickled_weights_still_need_torch(tmp_path):
    path = checkpoint_with(tmp_path, "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="needs torch"):
        TransformerLayer.from_pretrained(path, "text-classification", allow_pickle=True)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model weights"):
        TransformerLayer.from_pretrained(checkpoint_with(tmp_path, None), "text-classification")


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        TransformerLayer.from_pretrained(tmp_path, "text-classification")


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="unknown task"):
        TransformerLayer.from_pretrained(classifier_checkpoint(), "translation")


T5_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def tiny_t5_checkpoint(shared_dir: Path, model_class_name: str) -> Path:
    """A seeded tiny T5 (``TFT5Model``: encoder and decoder, or ``TFT5EncoderModel``, as
    sentence-T5 ships) saved with ``save_pretrained``, with t5-small's tokenizer."""

    def build(destination: Path) -> None:
        import tf_keras
        import transformers

        for name in T5_TOKENIZER_FILES:
            shutil.copy(shared_dir / "tokenizers" / "t5-small" / name, destination / name)
        tf_keras.utils.set_random_seed(0)
        config = transformers.T5Config(
            vocab_size=32128, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
            decoder_start_token_id=0,
        )  # fmt: skip
        model = getattr(transformers, model_class_name)(config)
        model(model.dummy_inputs)
        model.save_pretrained(str(destination))

    return cached_folder("checkpoint", f"t5-{model_class_name}", code_digest(Path(__file__)), build)


def t5_encoded(path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    return dict(hf_tokenizer(path)(texts, padding=True, truncation=True, return_tensors="np"))


def t5_encoder_states(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """What sentence-T5 embeds in transformers: TFT5EncoderModel's token states."""
    from transformers import TFT5EncoderModel

    return TFT5EncoderModel.from_pretrained(str(path))(inputs).last_hidden_state.numpy()


@pytest.mark.parametrize("saved_as", ["TFT5Model", "TFT5EncoderModel"])
def test_t5_feature_extraction_runs_the_encoder_alone(shared_dir, saved_as):
    path = tiny_t5_checkpoint(shared_dir, saved_as)
    inputs = t5_encoded(path, SENTENCES)
    states = TransformerLayer.from_pretrained(path, "feature-extraction")(inputs).numpy()
    np.testing.assert_allclose(states, t5_encoder_states(path, inputs), atol=1e-6)


@pytest.mark.slow  # the t5-small tokenizer's first call takes ~10 s
def test_t5_feature_extraction_pipeline_mean_pools_the_encoder_states(shared_dir):
    path = tiny_t5_checkpoint(shared_dir, "TFT5Model")
    embeddings = run(pipeline("feature-extraction", path), SENTENCES)["embedding"]
    inputs = t5_encoded(path, SENTENCES)
    mask = inputs["attention_mask"][..., None].astype(np.float32)
    expected = (t5_encoder_states(path, inputs) * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_t5_encoder_layer_rebuilds_from_its_config(shared_dir):
    """What reloading a saved pipeline does: the encoder alone again, not the full T5."""
    path = tiny_t5_checkpoint(shared_dir, "TFT5Model")
    layer = TransformerLayer.from_pretrained(path, "feature-extraction")
    rebuilt = TransformerLayer.from_config(json.loads(json.dumps(layer.get_config())))
    rebuilt.set_weights(layer.get_weights())
    inputs = t5_encoded(path, SENTENCES)
    np.testing.assert_allclose(rebuilt(inputs).numpy(), layer(inputs).numpy(), atol=1e-6)


def test_keras_files_load_their_weights_without_seeking_through_the_zip(tmp_path, monkeypatch):
    """zipfile serves each backward seek in a member by reading it again from its start:
    h5py seeking through a BERT-base pipeline's 440 MB of weights made its reload 37-100 s."""
    inputs = tf_keras.Input(shape=(4,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(inputs))
    model.save(tmp_path / "model.keras")
    seeks = []
    seek = zipfile.ZipExtFile.seek
    monkeypatch.setattr(
        zipfile.ZipExtFile, "seek", lambda file, *args: seeks.append(args) or seek(file, *args)
    )
    loaded = tf_keras.models.load_model(tmp_path / "model.keras")
    assert not seeks
    for loaded_weights, weights in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded_weights, weights)
