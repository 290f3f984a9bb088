"""The ``tfpipe`` command: export a checkpoint, predict with an export, inspect an export.

Errors are one ``tfpipe: error: ...`` line on stderr and a non-zero exit code; set
``TFPIPE_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TASKS = ("text-classification", "feature-extraction", "zero-shot-classification")


class CommandError(Exception):
    """A user-facing failure: reported as one line, exit code 1."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line like every other tfpipe error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tfpipe: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="tfpipe", description="Hugging Face text pipelines as TF Serving SavedModels."
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=OneLineArgumentParser
    )

    from tfpipe.pipelines import TASK_ALIASES

    export = commands.add_parser("export", help="build a pipeline and export it as a SavedModel")
    export.add_argument("--task", required=True, choices=[*TASKS, *TASK_ALIASES])
    export.add_argument("--model", required=True, help="local checkpoint folder")
    export.add_argument("--output", required=True, help="saved_models/NAME/VERSION")
    export.add_argument("--max-length", type=int, help="tokens per text (default: checkpoint's)")
    export.add_argument(
        "--pad-token", help="the tokenizer's pad token if it has none, e.g. '<|endoftext|>'"
    )
    export.add_argument("--candidate-labels", nargs="+", help="zero-shot labels")
    export.add_argument("--hypothesis-template", help='zero-shot template, e.g. "This is {}."')
    export.add_argument("--multi-label", action="store_true", help="zero-shot with NLI models")
    export.add_argument("--text-pair", action="store_true", help="classify (text, text_pair)")
    export.add_argument("--top-k", type=int, help="add top_labels/top_scores outputs")
    export.add_argument(
        "--labels", nargs="+", metavar="NAME", help="class names of a new classification head"
    )
    export.add_argument(
        "--allow-untrained-head",
        action="store_true",
        help="build a model with weights the checkpoint lacks (an untrained head)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument(
        "--allow-pickle", action="store_true", help="allow pytorch_model.bin (runs pickle)"
    )
    export.add_argument(
        "--serving-base-path",
        default="/models",
        help="where the model server sees the base folder in models.config (default: /models)",
    )
    export.set_defaults(handler=run_export)

    predict = commands.add_parser("predict", help="run an exported model, print JSON lines")
    predict.add_argument("saved_model", help="saved_models/NAME/VERSION")
    predict.add_argument("texts", nargs="*", metavar="TEXT")
    predict.add_argument("--file", help="read texts from a file, one per line ('-': stdin)")
    predict.add_argument("--text-pair", nargs="+", help="second texts, one per text")
    predict.set_defaults(handler=run_predict)

    inspect = commands.add_parser("inspect", help="signatures, op audit and metadata of an export")
    inspect.add_argument("saved_model", help="saved_models/NAME/VERSION")
    inspect.set_defaults(handler=run_inspect)
    return parser


def pipeline_options(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options the user gave, so the task builder rejects ones it does not take."""
    options = {
        "candidate_labels": args.candidate_labels,
        "hypothesis_template": args.hypothesis_template,
        "top_k": args.top_k,
        "multi_label": args.multi_label or None,
        "text_pair": args.text_pair or None,
        "allow_untrained_head": args.allow_untrained_head or None,
    }
    given = {name: value for name, value in options.items() if value is not None}
    return {**given, **label_options(args.labels)}


def label_options(labels: list[str] | None) -> dict[str, Any]:
    """``--labels`` as the config overrides naming a head's classes, in logit order."""
    if not labels:
        return {}
    if len(set(labels)) != len(labels):
        raise CommandError(f"--labels has duplicates: {' '.join(labels)}")
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: index for index, label in enumerate(labels)},
    }


def run_export(args: argparse.Namespace) -> None:
    import transformers

    from tfpipe.export import export
    from tfpipe.pipelines import pipeline

    transformers.logging.set_verbosity_error()
    model = pipeline(
        args.task,
        args.model,
        max_length=args.max_length,
        allow_pickle=args.allow_pickle,
        pad_token=args.pad_token,
        **pipeline_options(args),
    )
    exported = export(
        model, args.output, overwrite=args.overwrite, serving_base_path=args.serving_base_path
    )
    print(
        json.dumps(
            {
                "saved_model": str(exported.path),
                "models_config": str(exported.models_config),
                **exported.metadata,
            }
        )
    )


def read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.file:
        if args.file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        texts.extend(line for line in lines if line.strip())
    if not texts:
        raise CommandError("no texts: pass TEXT arguments or --file")
    return texts


def saved_model_dir(path: str) -> Path:
    folder = Path(path)
    if not (folder / "saved_model.pb").is_file():
        raise CommandError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    return folder


def run_predict(args: argparse.Namespace) -> None:
    import tensorflow as tf

    folder = saved_model_dir(args.saved_model)
    texts = read_texts(args)
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    inputs = {"text": tf.constant(texts)}
    expected_inputs = set(signature.structured_input_signature[1])
    if "text_pair" in expected_inputs:
        if not args.text_pair or len(args.text_pair) != len(texts):
            raise CommandError("this model classifies pairs: give one --text-pair per text")
        inputs["text_pair"] = tf.constant(args.text_pair)
    elif args.text_pair:
        raise CommandError("this model takes no text_pair")
    outputs = {name: value.numpy() for name, value in signature(**inputs).items()}
    for row, text in enumerate(texts):
        record = {"text": text, **{name: json_value(value[row]) for name, value in outputs.items()}}
        print(json.dumps(record, ensure_ascii=False))


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        return json_value(value.tolist())
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return value


def run_inspect(args: argparse.Namespace) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    from tfpipe.export.graph_audit import foreign_ops
    from tfpipe.export.saved_model import METADATA_FILE
    from tfpipe.export.verification import saved_model_op_types

    folder = saved_model_dir(args.saved_model)
    saved_model = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
    signatures = {
        name: {
            "inputs": {key: tensor_summary(tensor) for key, tensor in signature.inputs.items()},
            "outputs": {key: tensor_summary(tensor) for key, tensor in signature.outputs.items()},
        }
        for meta_graph in saved_model.meta_graphs
        for name, signature in meta_graph.signature_def.items()
        if not name.startswith("__")
    }
    op_types = saved_model_op_types(folder)
    metadata_path = folder / METADATA_FILE
    report = {
        "saved_model": str(folder),
        "signatures": signatures,
        "op_audit": {"op_types": len(op_types), "foreign_ops": sorted(foreign_ops(op_types))},
        "metadata": json.loads(metadata_path.read_text()) if metadata_path.is_file() else None,
    }
    print(json.dumps(report, indent=2))


def tensor_summary(tensor_info) -> str:
    """``string[?]``-style dtype and shape of a signature tensor."""
    from tensorflow.python.framework import dtypes

    dims = ["?" if dim.size < 0 else str(dim.size) for dim in tensor_info.tensor_shape.dim]
    return f"{dtypes.as_dtype(tensor_info.dtype).name}[{','.join(dims)}]"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except Exception as error:  # every failure is reported as one line
        if os.environ.get("TFPIPE_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"tfpipe: error: {message}", file=sys.stderr)
        return 1
    return 0
