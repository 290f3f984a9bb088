"""Checkpoints for the Keras 3 tests, made from the MiniLM package's files: a sequence
classifier (MiniLM's encoder and pooler under `bert.`, a seeded random 3-class head, saved
as PyTorch-format safetensors as transformers saves BertForSequenceClassification), and
MiniLM with another `hidden_act`; a tiny seeded random GPT-2 with a byte-level BPE
tokenizer trained here; and tiny seeded random DistilBERT (MiniLM's tokenizer), ALBERT (a
Unigram tokenizer trained here) and RoBERTa (a byte-level BPE trained here) sequence
classifiers, built as transformers' TF models and saved under PyTorch names. Built once,
kept on disk (tests/disk_cache.py).

Also transformers' outputs on them, which the Keras 3 pipelines must equal.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
from disk_cache import cached_folder, code_digest
from model_fixtures import CLASSIFIER_LABELS, TOKENIZER_FILES, hf_tokenizer, minilm_path

ATOL = 1e-5


def copy_minilm(destination: Path, **config_changes) -> dict:
    """MiniLM's tokenizer files and config.json (with ``config_changes``) in ``destination``."""
    for name in (*TOKENIZER_FILES, "sentence_bert_config.json", "modules.json"):
        shutil.copy(minilm_path() / name, destination / name)
    shutil.copytree(minilm_path() / "1_Pooling", destination / "1_Pooling")
    config = {**json.loads((minilm_path() / "config.json").read_text()), **config_changes}
    (destination / "config.json").write_text(json.dumps(config))
    return config


@functools.cache
def minilm_classifier() -> Path:
    """MiniLM as a BertForSequenceClassification with a random head (negative/neutral/positive)."""
    from safetensors.numpy import load_file, save_file

    def build(destination: Path) -> None:
        labels = {str(i): label for i, label in CLASSIFIER_LABELS.items()}
        config = copy_minilm(destination, architectures=["BertForSequenceClassification"],
                             id2label=labels, label2id={v: int(k) for k, v in labels.items()})
        tensors = {f"bert.{name}": value for name, value in
                   load_file(minilm_path() / "model.safetensors").items()}
        random = np.random.default_rng(0)
        tensors["classifier.weight"] = random.normal(
            0, 0.5, (len(labels), config["hidden_size"])).astype(np.float32)
        tensors["classifier.bias"] = random.normal(0, 0.1, len(labels)).astype(np.float32)
        save_file(tensors, destination / "model.safetensors", metadata={"format": "pt"})

    return cached_folder("checkpoint", "keras3-minilm-classifier", code_digest(Path(__file__)),
                         build)


@functools.cache
def minilm_with_activation(hidden_act: str) -> Path:
    """MiniLM's weights with config.json's hidden_act set to ``hidden_act``."""

    def build(destination: Path) -> None:
        copy_minilm(destination, hidden_act=hidden_act)
        shutil.copy(minilm_path() / "model.safetensors", destination / "model.safetensors")

    return cached_folder("checkpoint", f"keras3-minilm-{hidden_act}",
                         code_digest(Path(__file__)), build)


GPT2_SIZES = {"n_embd": 32, "n_layer": 2, "n_head": 2}


def gpt2_weights(vocab_size: int, positions: int) -> dict[str, np.ndarray]:
    """Seeded random GPT-2 weights under PyTorch names (Conv1D kernels [in, out])."""
    random = np.random.default_rng(0)
    width = GPT2_SIZES["n_embd"]

    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return random.normal(0, scale, shape).astype(np.float32)

    tensors = {"wte.weight": normal(vocab_size, width), "wpe.weight": normal(positions, width),
               "ln_f.weight": 1 + normal(width), "ln_f.bias": normal(width)}
    for layer in range(GPT2_SIZES["n_layer"]):
        shapes = {"attn.c_attn": (width, 3 * width), "attn.c_proj": (width, width),
                  "mlp.c_fc": (width, 4 * width), "mlp.c_proj": (4 * width, width)}
        for name, (fan_in, fan_out) in shapes.items():
            tensors[f"h.{layer}.{name}.weight"] = normal(fan_in, fan_out)
            tensors[f"h.{layer}.{name}.bias"] = normal(fan_out, scale=0.05)
        for norm in ("ln_1", "ln_2"):
            tensors[f"h.{layer}.{norm}.weight"] = 1 + normal(width)
            tensors[f"h.{layer}.{norm}.bias"] = normal(width)
    return tensors


@functools.cache
def tiny_gpt2() -> Path:
    """A tiny GPT-2 (GPT2Model weights, PyTorch-format safetensors) and its tokenizer."""
    from pipeline_checkpoints import MAX_LENGTH, write_tokenizer
    from safetensors.numpy import save_file
    from transformers import GPT2Config

    def build(destination: Path) -> None:
        write_tokenizer("gpt2", destination)
        vocab_size = len(hf_tokenizer(destination))
        config = GPT2Config(vocab_size=vocab_size, n_positions=MAX_LENGTH, **GPT2_SIZES,
                            architectures=["GPT2Model"])
        config.save_pretrained(str(destination))
        save_file(gpt2_weights(vocab_size, MAX_LENGTH), destination / "model.safetensors",
                  metadata={"format": "pt"})

    return cached_folder("checkpoint", "keras3-tiny-gpt2", code_digest(Path(__file__)), build)


def save_under_pytorch_names(model, destination: Path) -> None:
    """A transformers TF model's weights, seeded random (layer-norm scales near 1), as the
    PyTorch model's model.safetensors; the TF weights file is removed, so transformers'
    reference loads these names too."""
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import (
        apply_transpose,
        convert_tf_weight_name_to_pt_weight_name,
    )

    random = np.random.default_rng(0)
    tensors = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, tf_weight_shape=weight.shape)
        value = random.normal(0, 0.2, weight.shape).astype(np.float32)
        if "LayerNorm" in weight.name or "layer_norm" in weight.name:
            value += 1.0 if weight.name.endswith("gamma:0") else 0.0
        tensors[name] = np.ascontiguousarray(apply_transpose(transpose, value, pt_to_tf=False))
    save_file(tensors, destination / "model.safetensors", metadata={"format": "pt"})


def tiny_classifier(name: str, write_tokenizer, model_class: str, config) -> Path:
    """A tiny seeded random sequence classifier (CLASSIFIER_LABELS) under PyTorch names."""
    import transformers

    def build(destination: Path) -> None:
        write_tokenizer(destination)
        model = getattr(transformers, model_class)(config(len(hf_tokenizer(destination))))
        model(model.dummy_inputs)
        model.config.save_pretrained(str(destination))
        save_under_pytorch_names(model, destination)

    return cached_folder("checkpoint", name, code_digest(Path(__file__)), build)


def label_options() -> dict:
    labels = {str(i): label for i, label in CLASSIFIER_LABELS.items()}
    return {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}


@functools.cache
def tiny_distilbert() -> Path:
    """DistilBertForSequenceClassification with MiniLM's WordPiece tokenizer (which, as
    DistilBERT's, returns no token_type_ids)."""
    from pipeline_checkpoints import MAX_LENGTH
    from transformers import DistilBertConfig

    def write_tokenizer(destination: Path) -> None:
        for name in TOKENIZER_FILES:
            shutil.copy(minilm_path() / name, destination / name)
        path = destination / "tokenizer_config.json"
        config = {**json.loads(path.read_text()), "model_max_length": MAX_LENGTH,
                  "model_input_names": ["input_ids", "attention_mask"]}
        path.write_text(json.dumps(config))

    def config(vocab_size: int):
        return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2,
                                hidden_dim=37, max_position_embeddings=MAX_LENGTH,
                                **label_options())

    return tiny_classifier("keras3-tiny-distilbert", write_tokenizer,
                           "TFDistilBertForSequenceClassification", config)


@functools.cache
def tiny_albert() -> Path:
    """AlbertForSequenceClassification with an ALBERT-style Unigram tokenizer; 4 layers from
    2 groups of 2 shared blocks, so each block is called twice."""
    from pipeline_checkpoints import MAX_LENGTH, albert_tokenizer_config, train_albert_style
    from transformers import AlbertConfig

    def write_tokenizer(destination: Path) -> None:
        train_albert_style().save(str(destination / "tokenizer.json"))
        (destination / "tokenizer_config.json").write_text(json.dumps(albert_tokenizer_config()))

    def config(vocab_size: int):
        return AlbertConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32,
                            num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2,
                            num_attention_heads=2, intermediate_size=37,
                            max_position_embeddings=MAX_LENGTH, pad_token_id=0,
                            bos_token_id=2, eos_token_id=3, **label_options())

    return tiny_classifier("keras3-tiny-albert", write_tokenizer,
                           "TFAlbertForSequenceClassification", config)


@functools.cache
def tiny_roberta() -> Path:
    """RobertaForSequenceClassification with a byte-level BPE tokenizer (padding id 1)."""
    from pipeline_checkpoints import model_config, write_tokenizer

    def config(vocab_size: int):
        return model_config("roberta", CLASSIFIER_LABELS, vocab_size)

    return tiny_classifier("keras3-tiny-roberta", lambda folder: write_tokenizer("roberta", folder),
                           "TFRobertaForSequenceClassification", config)


@functools.cache
def hf_model(path, auto_class: str):
    import transformers

    return getattr(transformers, auto_class).from_pretrained(str(path), local_files_only=True)


def hf_embeddings(path, texts, max_length: int, normalize: bool) -> np.ndarray:
    """transformers' TF model, mean-pooled over the mask as sentence-transformers pools."""
    encoded = hf_tokenizer(path)(texts, padding=True, truncation=True, max_length=max_length,
                                 return_tensors="tf")
    states = hf_model(path, "TFAutoModel")(**encoded).last_hidden_state.numpy()
    mask = encoded["attention_mask"].numpy()[..., None]
    # sentence-transformers clamps the count: a text of no tokens (GPT-2's "") pools to 0.
    pooled = (states * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True) if normalize else pooled


def hf_probabilities(path, texts, pairs=None) -> np.ndarray:
    import tensorflow as tf

    encoded = hf_tokenizer(path)(texts, pairs, padding=True, truncation=True, return_tensors="tf")
    logits = hf_model(path, "TFAutoModelForSequenceClassification")(**encoded).logits
    return tf.nn.softmax(logits, axis=-1).numpy()


def run(model, texts, **more) -> dict:
    """A Keras 3 pipeline's outputs for ``texts`` (and other string inputs) as numpy."""
    import tensorflow as tf

    inputs = {"text": tf.constant(texts, tf.string),
              **{k: tf.constant(v, tf.string) for k, v in more.items()}}
    return {name: np.asarray(value) for name, value in model(inputs).items()}
