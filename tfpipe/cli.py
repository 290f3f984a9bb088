"""The ``tfpipe`` command: export a checkpoint, predict with an export, inspect an export.

Errors are one ``tfpipe: error: ...`` line on stderr and a non-zero exit code, naming CLI
flags rather than the Python arguments behind them; set ``TFPIPE_DEBUG=1`` for the traceback
and TensorFlow's own logging.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from tfpipe.batch_predict import add_parser as add_batch_predict_parser
from tfpipe.cli_io import (
    CommandError,
    input_batches,
    input_layout,
    input_texts,
    json_lines,
    open_texts_file,
    write_lines,
)

TASKS = (
    "text-classification",
    "feature-extraction",
    "zero-shot-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
)
DEFAULT_BATCH_SIZE = 64


def quiet_python_logging() -> None:
    """TensorFlow's Python-side warnings (absl, the ``tensorflow`` logger) off, so an error is
    one line; TFPIPE_DEBUG=1 keeps them. The C++ side is quieted before TensorFlow is
    imported, in tfpipe/_command_start.py."""
    if os.environ.get("TFPIPE_DEBUG"):
        return
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line like every other tfpipe error, and each
    parser knows its options' flags (``flags``: destination -> ``--flag``) for error messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: dict[str, str] = {}  # filled by add_argument, which __init__ calls
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            self.flags[action.dest] = max(action.option_strings, key=len)
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tfpipe: error: {message} (see {self.prog} --help)\n")


def installed_version() -> str:
    try:
        return metadata.version("tfpipe")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def limit_or_off(value: str) -> int | str:
    """A chunking limit: a positive integer, or 'off' for no limit."""
    return "off" if value == "off" else positive_int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="tfpipe", description="Hugging Face text pipelines as TF Serving SavedModels."
    )
    parser.add_argument("--version", action="version", version=f"tfpipe {installed_version()}")
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
    export.add_argument(
        "--top-k",
        type=int,
        help="text-classification: add top_labels/top_scores; question-answering: answers per "
        "question (default 1); fill-mask: tokens per text (default 5)",
    )
    export.add_argument("--doc-stride", type=int, help="question answering: window overlap")
    export.add_argument("--max-seq-len", type=int, help="question answering: tokens per window")
    export.add_argument("--max-answer-len", type=int, help="question answering: answer tokens")
    export.add_argument(
        "--max-question-len", type=int, help="question answering: accepted, unused (as HF)"
    )
    export.add_argument(
        "--handle-impossible-answer",
        action="store_true",
        help="question answering: the empty answer competes",
    )
    export.add_argument(
        "--no-align-to-words",
        action="store_true",
        help="question answering: answers at token, not word, boundaries",
    )
    export.add_argument(
        "--labels", nargs="+", metavar="NAME", help="class names of a new classification head"
    )
    export.add_argument(
        "--aggregation-strategy",
        choices=["none", "simple", "first", "average", "max"],
        help="token-classification: entities per token (none, the default) or grouped",
    )
    export.add_argument(
        "--ignore-labels",
        nargs="*",
        metavar="LABEL",
        help="token-classification: labels left out (default: O; none given: keep all)",
    )
    export.add_argument(
        "--stride", type=int, help="token-classification: read long texts in windows sharing N"
    )
    export.add_argument(
        "--allow-untrained-head",
        action="store_true",
        help="build a model with weights the checkpoint lacks (an untrained head)",
    )
    export.add_argument(
        "--max-chunk-tokens",
        type=limit_or_off,
        metavar="N|off",
        help="padded tokens per model chunk of a length-sorted batch (default: 512; "
        "off: the whole batch at once)",
    )
    export.add_argument(
        "--micro-batch-size",
        type=limit_or_off,
        metavar="N|off",
        help="rows per model chunk at most (default: off, only --max-chunk-tokens limits)",
    )
    export.add_argument(
        "--keras",
        choices=["tf-keras", "3"],
        default="tf-keras",
        help="3: build with tfpipe.keras (Keras 3 on keras-hub: text-classification and "
        "feature-extraction for BERT, DistilBERT, ALBERT, RoBERTa, XLM-RoBERTa; GPT-2 "
        "feature-extraction; --max-length, --pad-token, --text-pair, --labels, "
        "--allow-untrained-head)",
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
    predict.add_argument(
        "--question",
        action="append",
        help="a question-answering model's question: once per context (TEXT or --file "
        "line), or once for all",
    )
    predict.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"texts per model call, output written after each (default: {DEFAULT_BATCH_SIZE})",
    )
    predict.set_defaults(handler=run_predict)

    inspect = commands.add_parser("inspect", help="signatures, op audit and metadata of an export")
    inspect.add_argument("saved_model", help="saved_models/NAME/VERSION")
    inspect.set_defaults(handler=run_inspect)
    add_batch_predict_parser(commands)
    for command in commands.choices.values():
        command.set_defaults(cli_flags=command.flags)
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
        "doc_stride": args.doc_stride,
        "max_seq_len": args.max_seq_len,
        "max_answer_len": args.max_answer_len,
        "max_question_len": args.max_question_len,
        "handle_impossible_answer": args.handle_impossible_answer or None,
        "align_to_words": False if args.no_align_to_words else None,
        "aggregation_strategy": args.aggregation_strategy,
        "ignore_labels": args.ignore_labels,
        "stride": args.stride,
    }
    given = {name: value for name, value in options.items() if value is not None}
    return {**given, **label_options(args.labels), **chunking_options(args)}


def chunking_options(args: argparse.Namespace) -> dict[str, int | None]:
    """The chunking limits the user set; 'off' is None (no limit)."""
    limits = {"max_chunk_tokens": args.max_chunk_tokens, "micro_batch_size": args.micro_batch_size}
    return {
        name: None if value == "off" else value
        for name, value in limits.items()
        if value is not None
    }


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
    if args.keras == "3":
        model = keras3_pipeline(args)
    else:
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


KERAS3_OPTIONS = frozenset({"text_pair", "allow_untrained_head", "id2label", "label2id"})


def keras3_pipeline(args: argparse.Namespace):
    """``--keras 3``: the tfpipe.keras pipeline; an option it does not take is an error."""
    from tfpipe.keras import pipeline

    options = pipeline_options(args)
    refused = sorted(set(options) - KERAS3_OPTIONS)
    refused += ["allow_pickle"] if args.allow_pickle else []
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise CommandError(f"--keras 3 does not take {flags}")
    options.pop("label2id", None)
    return pipeline(
        args.task, args.model, max_length=args.max_length, pad_token=args.pad_token, **options
    )


def saved_model_dir(path: str) -> Path:
    folder = Path(path)
    if not (folder / "saved_model.pb").is_file():
        raise CommandError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    return folder


def run_predict(args: argparse.Namespace) -> None:
    """Stream texts through the export batch by batch: memory is bounded by a batch, and each
    batch's lines are written (and flushed) before the next batch is read."""
    folder = saved_model_dir(args.saved_model)
    if not args.texts and args.file is None:
        raise CommandError("no texts: pass TEXT arguments or --file")
    file = open_texts_file(args.file) if args.file is not None else None
    try:
        import tensorflow as tf

        signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
        texts = input_texts(args.texts, file, args.file)
        layout = input_layout(signature.structured_input_signature[1])
        flag_values = {"--text-pair": args.text_pair, "--question": args.question}
        for batch in input_batches(texts, flag_values, layout, args.batch_size):
            outputs = signature(**{name: tf.constant(values) for name, values in batch.items()})
            write_lines(json_lines(batch, outputs, layout.shown))
    finally:
        if file is not None and file is not sys.stdin.buffer:
            file.close()


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


def with_cli_flags(message: str, flags: dict[str, str]) -> str:
    """A library error's Python argument names as the command's flags: ``overwrite=True``
    becomes ``--overwrite``, ``candidate_labels`` ``--candidate-labels``. Bare names are
    rewritten only when they have an underscore (a plain word may be English) and never
    inside a quoted name or a path."""
    outside = r"(?<![\w'\"/\\.-]){}(?![\w'\"/\\-]|\.\w)"
    for name, flag in flags.items():
        message = re.sub(outside.format(re.escape(name) + "=True"), flag, message)
        if "_" in name:
            message = re.sub(outside.format(re.escape(name)), flag, message)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    quiet_python_logging()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.beam_args = unknown  # batch-predict's: Beam's pipeline options
    try:
        args.handler(args)
    except BrokenPipeError:
        # The reader of stdout left (``| head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so exit's flush of stdout cannot fail again
        os.close(devnull)
        return 1
    except Exception as error:  # every failure is reported as one line
        if os.environ.get("TFPIPE_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"tfpipe: error: {with_cli_flags(message, args.cli_flags)}", file=sys.stderr)
        return 1
    return 0
