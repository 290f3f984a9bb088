"""Checkpoints for the Keras 3 tests, made from the MiniLM package's files: a sequence
classifier (MiniLM's encoder and pooler under `bert.`, a seeded random 3-class head, saved
as PyTorch-format safetensors as transformers saves BertForSequenceClassification), and
MiniLM with another `hidden_act`; and a tiny seeded random GPT-2 with a byte-level BPE
tokenizer trained here. Built once, kept on disk (tests/disk_cache.py)."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
from disk_cache import cached_folder, code_digest
from model_fixtures import CLASSIFIER_LABELS, TOKENIZER_FILES, hf_tokenizer, minilm_path


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
