"""``tfpipe batch-predict``: score files with an export on Apache Beam (tfpipe/beam/).

Checks what it can before the pipeline starts (the export and its inputs, the input format,
matching files), so a mistake is one error line rather than a failed job. Options it does not
know are Beam's pipeline options, passed through (``--project``, ``--temp_location``, ...).
Apache Beam is an extra: without it the command says how to install it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from tfpipe.cli_args import positive_int
from tfpipe.cli_io import CommandError, input_layout

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".txt", ".text")
# Beam reads these compressed (CompressionTypes.AUTO); the format is the name's before them.
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".deflate", ".zst", ".zstd", ".xz", ".lzma")
DIRECT_RUNNERS = ("directrunner", "direct")
# The DirectRunner's workers by default: one per core, as threads of this process (measured
# in docs/benchmarks.md: TensorFlow runs a call's ops on every core either way, and threads
# share one loaded export; processes each load their own).
DEFAULT_RUNNING_MODE = "multi_threading"
# Beam 2.77 warns of missing GCP clients on import, and of a missing ``resource`` module on
# every model load where torch is absent (its import of both fails together).
BEAM_NOISE = ("apitools not found", "Resource module is not available")
# "tensorflow.python.framework.errors_impl.InvalidArgumentError: ..." -> the class and message
ERROR_LINE = re.compile(r"^(?:\w+\.)*(\w+(?:Error|Exception)): ?(.*)$")
MAX_CAUSE_CHARS = 1000
BEAM_MISSING = "tfpipe batch-predict needs Apache Beam: pip install 'tfpipe[beam]'"


def add_parser(commands: Any) -> None:
    """Registers ``batch-predict`` on the ``tfpipe`` subcommands."""
    parser = commands.add_parser(
        "batch-predict",
        help="score files with an export on Apache Beam, writing JSONL shards",
        allow_abbrev=False,  # a Beam option must never be taken for a prefix of ours
        epilog="Any other --option=value is one of Beam's pipeline options, passed through "
        "(e.g. --direct_num_workers=1, --project=P); see docs/beam.md.",
    )
    parser.add_argument("saved_model", help="saved_models/NAME/VERSION (or a gs:// path)")
    parser.add_argument("--input", required=True, metavar="PATTERN", help="input file glob")
    parser.add_argument("--output", required=True, metavar="PREFIX", help="output path prefix")
    parser.add_argument(
        "--format",
        choices=("auto", "jsonl", "text"),
        default="auto",
        help="jsonl: a JSON object per line; text: a text per line (default auto: by the "
        "input's extension, .jsonl/.ndjson/.json or .txt/.text)",
    )
    parser.add_argument(
        "--text-field", help="JSONL field of the export's text input (default: text)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="rows per model call (default: 32)"
    )
    parser.add_argument(
        "--runner", default="DirectRunner", help="Beam runner (default: DirectRunner)"
    )
    parser.set_defaults(handler=run, passes_unknown_args=True)


def run(args: argparse.Namespace) -> None:
    with progress_logging():
        score_files(args)


def score_files(args: argparse.Namespace) -> None:
    beam_available()
    from tfpipe.beam import RecordReader, SavedModelHandler, run_batch_predict

    names = signature_input_names(args.saved_model)
    input_layout(names)  # a tfpipe export's inputs, else an error naming them
    jsonl = input_is_jsonl(args.format, args.input)
    reader = RecordReader(input_fields(names, args.text_field, jsonl), jsonl)
    options = pipeline_options(args.runner, args.beam_args)
    require_matches(args.input)
    handler = SavedModelHandler(args.saved_model, rows_per_call=args.batch_size)
    try:
        summary = run_batch_predict(options, args.input, args.output, reader, handler)
    except Exception as error:  # Beam has logged the traceback; the error line names the cause
        raise CommandError(f"the pipeline failed: {failure_cause(error)}") from error
    print(json.dumps(summary.as_json(args.output)))


def failure_cause(error: Exception) -> str:
    """A worker's error reaches the runner as its whole traceback; the cause is its last
    ``SomeError: message`` and what follows (TensorFlow's messages span lines)."""
    lines = str(error).splitlines()
    starts = [index for index, line in enumerate(lines) if ERROR_LINE.match(line.strip())]
    if not starts:
        return " ".join(str(error).split())[:MAX_CAUSE_CHARS] or type(error).__name__
    name, message = ERROR_LINE.match(lines[starts[-1]].strip()).groups()
    rest = " ".join(lines[starts[-1] + 1 :])
    return " ".join(f"{name}: {message} {rest}".split())[:MAX_CAUSE_CHARS]


def beam_available() -> None:
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise CommandError(BEAM_MISSING) from None


def signature_input_names(saved_model: str) -> list[str]:
    """The ``serving_default`` inputs, read from saved_model.pb (any filesystem TensorFlow
    reads, gs:// included) without loading the model."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    path = f"{saved_model.rstrip('/')}/saved_model.pb"
    if not tf.io.gfile.exists(path):
        raise CommandError(f"{saved_model} is not a SavedModel folder (no saved_model.pb)")
    with tf.io.gfile.GFile(path, "rb") as file:
        proto = saved_model_pb2.SavedModel.FromString(file.read())
    for meta_graph in proto.meta_graphs:
        if "serving_default" in meta_graph.signature_def:
            return sorted(meta_graph.signature_def["serving_default"].inputs)
    raise CommandError(f"{saved_model} has no serving_default signature")


def input_is_jsonl(choice: str, pattern: str) -> bool:
    """``--format``, or with ``auto`` the pattern's extension (a compression suffix aside)."""
    if choice != "auto":
        return choice == "jsonl"
    name = pattern.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(JSONL_SUFFIXES):
        return True
    if name.endswith(TEXT_SUFFIXES):
        return False
    raise CommandError(
        f"cannot tell the format of --input {pattern} from its extension: pass --format "
        "jsonl or --format text"
    )


def input_fields(names: list[str], text_field: str | None, jsonl: bool) -> dict[str, str]:
    """Export input name -> JSON field: each input's own name, ``text`` renamed by
    ``--text-field``. Plain text feeds a single-text export only."""
    if text_field is not None and "text" not in names:
        raise CommandError(f"this export has no text input (inputs: {', '.join(names)})")
    if not jsonl and names != ["text"]:
        raise CommandError(
            f"this export takes {', '.join(names)}: give JSONL records with those fields "
            "(--format jsonl)"
        )
    return {name: text_field if name == "text" and text_field else name for name in names}


def require_matches(pattern: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError, or ValueError for a bad scheme
        raise CommandError(f"cannot list --input {pattern}: {error}") from None
    if not matched:
        raise CommandError(f"no input files match --input {pattern}")


def pipeline_options(runner: str, beam_args: list[str]):
    """Beam's options from the passed-through arguments; the DirectRunner gets a worker per
    core unless they say otherwise. An argument that is no Beam option is refused: Beam would
    drop it with a warning, and a misspelt flag of ours (``--text_field``) would be lost."""
    from apache_beam.options.pipeline_options import PipelineOptions

    given = PipelineOptions(beam_args).get_all_options(retain_unknown_options=True)
    unknown = sorted(set(given) - set(PipelineOptions([]).get_all_options()))
    if unknown:
        flags = ", ".join(f"--{name}" for name in unknown)
        raise CommandError(f"unknown options {flags}: neither batch-predict's nor Beam's")
    arguments = [f"--runner={runner}", *beam_args]
    flags = flags_given(beam_args)
    if runner.lower() in DIRECT_RUNNERS:
        mode = given["direct_running_mode"]
        if "--direct_running_mode" not in flags:
            mode = DEFAULT_RUNNING_MODE
            arguments.append(f"--direct_running_mode={mode}")
        if "--direct_num_workers" not in flags:
            workers = 1 if mode == "in_memory" else os.cpu_count() or 1  # in_memory runs one
            arguments.append(f"--direct_num_workers={workers}")
    return PipelineOptions(arguments)


def flags_given(arguments: list[str]) -> set[str]:
    """``--name`` of each ``--name=value`` or ``--name value`` argument."""
    return {arg.split("=", 1)[0] for arg in arguments if arg.startswith("--")}


class DropBeamNoise(logging.Filter):
    """Beam's warnings that say nothing about the run: it logs them whatever the job."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # a worker's arrives quoted in the runner's
        return not any(noise in message for noise in BEAM_NOISE)


@contextlib.contextmanager
def progress_logging() -> Iterator[None]:
    """Progress lines (tfpipe.beam at INFO) and Beam's warnings on stderr while the command
    runs, as ``logging.basicConfig`` would write them, less Beam's noise. A root handler of
    our own also keeps ``logging.warning`` from installing one for good."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    handler.addFilter(DropBeamNoise())
    root, progress = logging.getLogger(), logging.getLogger("tfpipe.beam")
    level = progress.level
    root.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        progress.setLevel(level)
