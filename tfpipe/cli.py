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

from tfpipe.batch_predict import add_parser as add_batch_predict_parser
from tfpipe.cli_args import OneLineArgumentParser, positive_int
from tfpipe.cli_export import add_parser as add_export_parser
from tfpipe.cli_io import (
    CommandError,
    input_batches,
    input_layout,
    input_texts,
    json_lines,
    open_texts_file,
    write_lines,
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


def installed_version() -> str:
    try:
        return metadata.version("tfpipe")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="tfpipe", description="Hugging Face text pipelines as TF Serving SavedModels."
    )
    parser.add_argument("--version", action="version", version=f"tfpipe {installed_version()}")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=OneLineArgumentParser
    )
    add_export_parser(commands)
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
