"""A checkpoint's config.json, checked before transformers builds what it declares.

transformers allocates every weight a config declares before it reads a single weight, so a
hostile or corrupt config (``vocab_size: 10**10``) makes loading take all memory or hours.
The checks here are cheap and bounded: the file size, the JSON shape, the size fields' types
and ranges, and the embedding matrix the config declares against the bytes of weights the
checkpoint actually holds.
"""

from __future__ import annotations

import os
from typing import Any

from tfpipe.json_files import read_json_object

MAX_CONFIG_JSON_BYTES = 16 * 2**20
# Config keys, per architecture family, that size what the model allocates or builds.
HIDDEN_SIZE_KEYS = ("embedding_size", "hidden_size", "n_embd", "d_model", "dim")
SIZE_LIMITS = {
    "vocab_size": 2**24,
    "hidden_size": 2**16,
    "embedding_size": 2**16,
    "n_embd": 2**16,
    "d_model": 2**16,
    "dim": 2**16,
    "intermediate_size": 2**18,
    "n_inner": 2**18,
    "d_ff": 2**18,
    "hidden_dim": 2**18,
    "num_hidden_layers": 1024,
    "n_layer": 1024,
    "num_layers": 1024,
    "num_attention_heads": 1024,
    "n_head": 1024,
    "max_position_embeddings": 2**20,
    "n_positions": 2**20,
    "type_vocab_size": 2**16,
    "num_labels": 2**20,
}
# Weights are at least 2 bytes each (float16/bfloat16); a fresh head, small models' buffers and
# tied or shared weights make the declared embedding legitimately exceed a checkpoint's share.
MIN_BYTES_PER_WEIGHT = 2
WEIGHT_SLACK = 10_000_000
WEIGHT_FILE_SUFFIXES = (".safetensors", ".h5", ".bin")


class ModelLoadError(ValueError):
    """A checkpoint folder cannot be loaded (missing files, unsafe weights, unknown task)."""


def read_model_config(folder: str) -> dict[str, Any]:
    """config.json of `folder` as a dict, or a ModelLoadError naming the file and what is wrong."""
    path = os.path.join(folder, "config.json")
    config = read_json_object(path, "config.json", MAX_CONFIG_JSON_BYTES, ModelLoadError)
    check_sizes(config, path)
    return config


def check_sizes(config: dict[str, Any], source: str) -> None:
    """Every size field a non-negative integer within what any real checkpoint uses."""
    for key, limit in SIZE_LIMITS.items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelLoadError(f"{source}: {key} must be a non-negative integer, got {value!r}")
        if value > limit:
            raise ModelLoadError(f"{source}: {key}={value:,} is over tfpipe's limit of {limit:,}")


def declared_embedding_weights(config: dict[str, Any]) -> int:
    """The size of the token embedding matrix the config declares (every family has one)."""
    width = next((config[key] for key in HIDDEN_SIZE_KEYS if config.get(key)), 0)
    return int(config.get("vocab_size") or 0) * int(width)


def weight_file_bytes(folder: str) -> int:
    """Total size of the weight files (shards included) in `folder`."""
    return sum(
        entry.stat().st_size
        for entry in os.scandir(folder)
        if entry.is_file() and entry.name.endswith(WEIGHT_FILE_SUFFIXES)
    )


def check_against_weights(config: dict[str, Any], folder: str) -> None:
    """Refuse a config declaring far more embedding weights than the checkpoint's files hold
    (a folder without weight files is left to the loader, which names what is missing)."""
    declared = declared_embedding_weights(config)
    held = weight_file_bytes(folder) // MIN_BYTES_PER_WEIGHT
    if held and declared > 2 * held + WEIGHT_SLACK:
        raise ModelLoadError(
            f"{os.path.join(folder, 'config.json')} declares a {declared:,}-weight token "
            f"embedding but the checkpoint's weight files hold at most {held:,} weights; "
            "refusing to allocate it"
        )


def checked_model_config(folder: str) -> dict[str, Any]:
    """read_model_config plus check_against_weights: safe to hand to transformers."""
    config = read_model_config(folder)
    check_against_weights(config, folder)
    return config
