"""How close a served model gets to the machine: real-token FLOPs against the fp32 matmul rate.

A contender's texts/s says little across machines; the share of the machine it uses says how
much is left. The work counted is what the real (unpadded) tokens need, so padding computed
for nothing counts against the contender:

- dense layers: 2 FLOPs per weight of the encoder's matmuls per token (Q, K, V, output,
  and the two feed-forward matrices of every layer);
- attention: QKᵀ and the weighted sum of V, 2·L²·hidden FLOPs each per layer for a text
  of L tokens.

The machine's rate is that of a large fp32 matmul in TensorFlow with its default thread pools,
measured in the same run, the best of several calls: what the model's matmuls could reach.

Batch sets, cut from one sample of texts: mixed (random texts, the lengths traffic has),
uniform (texts of equal token counts in each batch) and single texts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

MATMUL_SIZE = 2048


def encoder_flops(config, lengths: Sequence[int]) -> float:
    """FLOPs a BERT-style encoder (``config``: a transformers config) needs for these texts."""
    hidden, inner = config.hidden_size, config.intermediate_size
    layers = config.num_hidden_layers
    dense_per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * inner)
    lengths = np.asarray(lengths, dtype=np.float64)
    return float(dense_per_token * lengths.sum() + 4 * layers * hidden * (lengths**2).sum())


def machine_matmul_rate(calls: int = 10) -> float:
    """FLOP/s of the best of ``calls`` [2048, 2048] × [2048, 2048] fp32 matmuls."""
    left = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[0, 1])
    right = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[0, 2])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(left, right)))
    matmul()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        matmul().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_SIZE**3 / best


def mixed_batches(texts: list[str], count: int, size: int, seed: int) -> list[list[str]]:
    """``count`` batches of ``size`` texts drawn at random: the length mix of real traffic."""
    chosen = random.Random(seed).sample(texts, count * size)
    return [chosen[i : i + size] for i in range(0, len(chosen), size)]


def uniform_batches(
    texts: list[str], lengths: Sequence[int], count: int, size: int, seed: int
) -> list[list[str]]:
    """``count`` batches whose texts have (nearly) equal token counts, at lengths spread
    over the corpus: each batch is a run of neighbours in the texts sorted by length."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    starts = np.linspace(0, len(order) - size, count).astype(int)
    rng = random.Random(seed)
    batches = []
    for start in starts:
        batch = [texts[index] for index in order[start : start + size]]
        rng.shuffle(batch)
        batches.append(batch)
    return batches
