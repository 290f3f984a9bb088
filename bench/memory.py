"""Where a serving process's memory goes: fresh TensorFlow-only processes, one per case.

    python bench/memory.py [--work DIR] [--export DIR] [--rounds 3] [--quick]

Builds (into --work, reused when it already holds them) what bench/serving.py serves: MiniLM
with a seeded 2-label head, its `tfpipe.export` (in a child process) and the model-only
SavedModel (ids in). Each case then runs `python bench/memory.py --child SPEC`: a process that
imports TensorFlow and nothing heavier, loads one SavedModel, answers the same batches of 32
course texts (max_length 128) `--rounds` times, and reports resident memory (VmRSS) and its
peak (VmHWM) after import, load, the first batch and each round, then after glibc's
malloc_trim(0), which hands freed heap back to the system.

Cases: the export's `serving_default` and `tokenize` signatures alone, each with TF2's
`tf.saved_model.load` and with the TF1 Session loader (tag serve, what TF Serving does); the
model-only SavedModel fed the same batches as ids padded to 128; batch sizes 1 to 128 in one
process; and `serving_default` under allocator settings (environment variables of the child).
Also printed: each SavedModel's graph constant bytes, which a process copies many times while
it loads and first runs a graph. `--export DIR` measures another tfpipe export (e.g. one made
by an older tfpipe) instead of building one. Results: docs/serving.md, "Memory".
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    command_line,
    current_rss_mb,
    machine_line,
    markdown_table,
    parse_with_quick,
    peak_rss_mb,
    today,
)

MAX_LENGTH = 128
SIZES = (1, 4, 16, 32, 64, 128)
SETTINGS = (
    "MALLOC_ARENA_MAX=2",
    "MALLOC_TRIM_THRESHOLD_=0",
    "MALLOC_MMAP_THRESHOLD_=131072",
    "TF_ENABLE_ONEDNN_OPTS=0",
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY=0",
    "TF_CPU_ALLOCATOR_USE_BFC=true",
)
QUICK = {"batches": 2, "rounds": 2, "settings": False}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="build folder, kept (default: a temporary one)")
    parser.add_argument("--export", type=Path, help="a tfpipe export version folder to measure")
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 texts per round")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the batches")
    parser.add_argument(
        "--no-settings", dest="settings", action="store_false", help="skip allocator settings"
    )
    return parse_with_quick(parser, argv, QUICK)


# --- the child: TensorFlow only -----------------------------------------------------------


def memory() -> dict[str, float]:
    return {"rss": current_rss_mb(), "peak": peak_rss_mb()}


def child(spec: dict) -> dict:
    """Load, answer every request `rounds` times, trim; memory at each step."""
    steps = {"start": memory()}
    import tensorflow as tf

    steps["import"] = memory()
    requests = json.loads(Path(spec["requests"]).read_text(encoding="utf-8"))
    if spec["loader"] == "tf1":
        session = tf.compat.v1.Session(graph=tf.Graph())
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], spec["path"])
        signature = meta_graph.signature_def[spec["signature"]]
        outputs = {name: info.name for name, info in signature.outputs.items()}
        inputs = {name: info.name for name, info in signature.inputs.items()}

        def call(feed: dict) -> object:
            return session.run(outputs, {inputs[name]: value for name, value in feed.items()})
    else:
        function = tf.saved_model.load(spec["path"]).signatures[spec["signature"]]

        def call(feed: dict) -> object:
            return function(**{name: tf.constant(value) for name, value in feed.items()})

    steps["loaded"] = memory()
    seconds = []
    for round_index in range(spec["rounds"]):
        start = time.perf_counter()
        for index, feed in enumerate(requests):
            call(feed)
            if round_index == 0 and (index == 0 or spec.get("every_batch")):
                steps[f"batch {index + 1}"] = memory()
        seconds.append(time.perf_counter() - start)
        steps[f"round {round_index + 1}"] = memory()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    steps["trimmed"] = memory()
    return {"steps": steps, "seconds": seconds}


# --- the parent: build, run the cases, print -----------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_child(spec: dict, environment: str = "") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if environment:
        name, value = environment.split("=", 1)
        env[name] = value
    completed = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True, text=True, env=env, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child failed ({spec}, {environment}):\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def build(work: Path, export_dir: Path | None) -> dict[str, Path]:
    """Checkpoint, tfpipe export and model-only SavedModel in `work` (kept ones reused)."""
    import serving

    paths = {
        "checkpoint": work / "checkpoint",
        "export": export_dir or work / "saved_models" / "minilm" / "1",
        "model_only": work / "model_only",
    }
    if not (paths["checkpoint"] / "config.json").exists():
        progress("checkpoint …")
        serving.prepare_checkpoint(paths["checkpoint"])
    if not (paths["export"] / "saved_model.pb").exists():
        progress("tfpipe export (child process) …")
        serving.run_child("export", paths["checkpoint"], paths["export"])
    if not (paths["model_only"] / "saved_model.pb").exists():
        progress("model-only SavedModel …")
        from transformers import TFAutoModelForSequenceClassification

        model = TFAutoModelForSequenceClassification.from_pretrained(
            str(paths["checkpoint"]), local_files_only=True, use_safetensors=True
        )
        serving.save_model_only(model, paths["model_only"])
    return paths


def write_requests(work: Path, checkpoint: Path, batches: int) -> dict[str, Path]:
    """The feeds: text batches, the same as ids padded to 128, and one batch of each size."""
    from serving import MODEL_INPUTS, sample_batches
    from transformers import AutoTokenizer

    texts, _ = sample_batches(batches)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))

    def ids(batch: list[str]) -> dict[str, list]:
        encoded = tokenizer(batch, padding="max_length", truncation=True,
                            max_length=MAX_LENGTH, return_tensors="np")
        return {name: encoded[name].astype("int32").tolist() for name in MODEL_INPUTS}

    flat = [text for batch in texts for text in batch]
    feeds = {
        "text": [{"text": batch} for batch in texts],
        "ids": [ids(batch) for batch in texts],
        "sizes": [{"text": (flat * 128)[:size]} for size in SIZES],
    }
    paths = {}
    for name, content in feeds.items():
        paths[name] = work / f"{name}_requests.json"
        paths[name].write_text(json.dumps(content), encoding="utf-8")
    return paths


def cases(paths: dict, requests: dict, args: argparse.Namespace) -> list[tuple[str, dict, str]]:
    """(label, child spec, environment setting) of every case."""
    export, model_only = str(paths["export"]), str(paths["model_only"])

    def spec(path, signature="serving_default", loader="tf2", feeds="text", **more):
        return {"path": path, "signature": signature, "loader": loader,
                "requests": str(requests[feeds]), "rounds": args.rounds, **more}

    chosen = [
        ("tfpipe serving_default, TF2 load", spec(export), ""),
        ("tfpipe serving_default, TF1 Session load", spec(export, loader="tf1"), ""),
        ("tfpipe tokenize alone, TF2 load", spec(export, "tokenize"), ""),
        ("tfpipe tokenize alone, TF1 Session load", spec(export, "tokenize", loader="tf1"), ""),
        ("model-only, ids at width 128, TF2 load", spec(model_only, feeds="ids"), ""),
        ("model-only, ids at width 128, TF1 Session load",
         spec(model_only, loader="tf1", feeds="ids"), ""),
        (f"tfpipe serving_default, batch sizes {SIZES[0]}→{SIZES[-1]}",
         spec(export, feeds="sizes", every_batch=True), ""),
    ]
    if args.settings:
        chosen += [(f"tfpipe serving_default, {setting}", spec(export), setting)
                   for setting in SETTINGS]
        chosen.append(
            (f"model-only, {SETTINGS[1]}", spec(model_only, feeds="ids"), SETTINGS[1])
        )
    return chosen


def row(label: str, report: dict) -> list[str]:
    steps, seconds = report["steps"], report["seconds"]
    rounds = [key for key in steps if key.startswith("round")]
    first, last = steps[rounds[0]], steps[rounds[-1]]
    cells = [
        steps["import"]["rss"], steps["loaded"]["peak"], steps["batch 1"]["peak"],
        first["peak"], last["peak"], last["peak"] - first["peak"], last["rss"],
        steps["trimmed"]["rss"],
    ]
    return [label, *(f"{value:,.0f}" for value in cells), f"{min(seconds):.1f}"]


def constants_table(paths: dict) -> str:
    from tensorflow.core.protobuf import saved_model_pb2

    from tfpipe.export.graph_audit import constant_bytes

    rows = []
    for name in ("export", "model_only"):
        pb = Path(paths[name]) / "saved_model.pb"
        graph = saved_model_pb2.SavedModel.FromString(pb.read_bytes()).meta_graphs[0].graph_def
        rows.append([f"{name}: {paths[name]}", f"{pb.stat().st_size / 2**20:.1f}",
                     f"{constant_bytes(graph) / 2**20:.1f}"])
    return markdown_table(["SavedModel", "saved_model.pb, MiB", "graph constants, MiB"], rows)


def sizes_line(report: dict) -> str:
    steps = report["steps"]
    peaks = [f"{size}: {steps[f'batch {i + 1}']['peak']:,.0f}" for i, size in enumerate(SIZES)]
    return "Peak RSS (MiB) after the first batch of each size, in order: " + ", ".join(peaks)


def measure(args: argparse.Namespace, work: Path) -> str:
    paths = build(work, args.export)
    requests = write_requests(work, paths["checkpoint"], args.batches)
    rows, sizes = [], ""
    for label, spec, environment in cases(paths, requests, args):
        progress(f"{label} …")
        report = run_child(spec, environment)
        rows.append(row(label, report))
        if "every_batch" in spec:
            sizes = sizes_line(report)
    headers = [
        "case (fresh process)", "RSS after import TF", "peak after load", "peak after batch 1",
        "peak after round 1", f"peak after round {args.rounds}", "growth rounds 1→last",
        "RSS at end", "RSS after malloc_trim", "s / round",
    ]
    return "\n\n".join([
        f"Serving memory (MiB): {args.batches} batches of 32 course texts, max_length "
        f"{MAX_LENGTH}, {args.rounds} rounds per process.",
        f"- Machine: {machine_line()}\n- Date: {today()}; command: "
        f"`{command_line('memory.py')}`",
        markdown_table(headers, rows),
        sizes,
        constants_table(paths),
    ])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        return 0
    args = parse_args(argv)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        print(measure(args, args.work))
    else:
        with tempfile.TemporaryDirectory(prefix="tfpipe-memory-") as work:
            print(measure(args, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
