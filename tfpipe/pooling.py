"""Sentence pooling as sentence-transformers does it, shared by the tf-keras
(`tfpipe.heads.SentencePooling`) and Keras 3 (`tfpipe.keras`) pooling layers: the math and
the reading of a checkpoint's pooling config, without Keras."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from tfpipe.json_files import read_json, read_json_object

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")
# sentence-transformers' 1_Pooling/config.json flags, in the order it applies them.
SENTENCE_TRANSFORMERS_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}
# modules.json and 1_Pooling/config.json are a few hundred bytes in every real checkpoint.
MAX_SENTENCE_TRANSFORMERS_JSON_BYTES = 2**20
# torch.nn.functional.normalize's default eps, which sentence-transformers' Normalize uses.
L2_NORMALIZE_EPSILON = 1e-12


def checked_pooling_mode(mode: str) -> str:
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {mode!r}")
    return mode


def pool(
    hidden_states: tf.Tensor, attention_mask: tf.Tensor, mode: str, normalize: bool
) -> tf.Tensor:
    """Token states ``[batch, seq, hidden]`` to one vector per text, as sentence-transformers
    pools them (``mode`` in POOLING_MODES), then L2-normalised if ``normalize``."""
    hidden_states = tf.cast(hidden_states, tf.float32)
    mask = tf.cast(attention_mask, tf.float32)[:, :, tf.newaxis]
    if mode == "cls":
        pooled = hidden_states[:, 0]
    elif mode == "max":
        pooled = tf.reduce_max(tf.where(mask > 0, hidden_states, -1e9), axis=1)
    else:
        summed = tf.reduce_sum(hidden_states * mask, axis=1)
        counts = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
        pooled = summed / (counts if mode == "mean" else tf.sqrt(counts))
    if normalize:
        pooled = l2_normalize(pooled)
    return pooled


def l2_normalize(vectors: tf.Tensor) -> tf.Tensor:
    """``x / max(||x||, eps)`` along the last axis, torch's ``F.normalize`` formula."""
    norms = tf.norm(vectors, axis=-1, keepdims=True)
    return vectors / tf.maximum(norms, L2_NORMALIZE_EPSILON)


def sentence_transformers_pooling(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """``{"mode", "normalize"}`` from a checkpoint's modules.json / 1_Pooling/config.json.

    Returns ``None`` for a folder that is not a sentence-transformers model.
    """
    folder = os.fspath(checkpoint)
    modules_path = os.path.join(folder, "modules.json")
    modules = (
        read_json(modules_path, "modules.json", MAX_SENTENCE_TRANSFORMERS_JSON_BYTES)
        if os.path.isfile(modules_path)
        else None
    ) or []
    module_types = {module.get("type", "").rsplit(".", 1)[-1]: module for module in modules}
    pooling_dir = module_types.get("Pooling", {}).get("path", "1_Pooling")
    pooling_path = os.path.join(folder, pooling_dir, "config.json")
    if not os.path.isfile(pooling_path):
        return None
    pooling_config = read_json_object(
        pooling_path, "pooling config.json", MAX_SENTENCE_TRANSFORMERS_JSON_BYTES
    )
    modes = [
        mode
        for flag, mode in SENTENCE_TRANSFORMERS_POOLING_FLAGS.items()
        if pooling_config.get(flag)
    ]
    if len(modes) != 1:
        raise ValueError(
            f"{pooling_dir}/config.json in {folder} selects pooling modes {modes}; tfpipe supports "
            "exactly one of cls, mean, max, mean_sqrt_len"
        )
    return {"mode": modes[0], "normalize": "Normalize" in module_types}
