"""The ``tfpipe batch-predict`` pipeline: read lines, predict, write JSONL shards.

Every input line ends in exactly one output line: ``PREFIX-SSSSS-of-NNNNN.jsonl`` (the
record plus the export's outputs) or ``PREFIX-errors-SSSSS-of-NNNNN.jsonl`` (file, reason,
line). Beam's file sinks write each bundle to a temporary file and keep only the files of
bundles that succeeded, so a bundle retried after a failure is written once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tfpipe.beam.handler import SavedModelHandler
from tfpipe.beam.records import RecordError, RecordReader

NAMESPACE = "tfpipe"
COUNTERS = ("records_read", "records_predicted", "records_failed")
ERRORS = "errors"
SUFFIX = ".jsonl"
PROGRESS_SECONDS = 30.0
LOGGER = logging.getLogger("tfpipe.beam")


def json_line(value: dict[str, Any]) -> bytes:
    """One UTF-8 JSON line; a record with a lone surrogate (JSON ``"\\ud800"``) is written
    with ASCII escapes, the only form in which it is valid UTF-8."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


class ReadRecords(beam.DoFn):
    """(file, line) -> (record as a JSON line, inputs), or an error record on the ``errors``
    output. The record travels as JSON bytes: Beam's coders cannot encode a str holding a
    lone surrogate, which a JSON record may."""

    def __init__(self, reader: RecordReader) -> None:
        self.reader = reader
        self.read = Metrics.counter(NAMESPACE, "records_read")
        self.failed = Metrics.counter(NAMESPACE, "records_failed")

    def process(self, element: tuple[str, bytes]) -> Iterator[Any]:
        file, line = element
        self.read.inc()
        try:
            record, inputs = self.reader.read(line)
        except RecordError as error:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(
                ERRORS, json_line(self.reader.error_record(file, line, str(error)))
            )
            return
        yield json_line(record), inputs


class FormatPredictions(beam.DoFn):
    """(record, outputs) -> the record plus the outputs (outputs win a name clash), with a
    progress line on this worker's log every PROGRESS_SECONDS."""

    def __init__(self) -> None:
        self.predicted = Metrics.counter(NAMESPACE, "records_predicted")

    def setup(self) -> None:
        self.started = self.last_log = time.monotonic()
        self.count = 0

    def process(self, element: tuple[bytes, dict[str, Any]]) -> Iterator[bytes]:
        record, outputs = element
        self.predicted.inc()
        self.count += 1
        now = time.monotonic()
        if now - self.last_log >= PROGRESS_SECONDS:
            self.last_log = now
            LOGGER.info("tfpipe batch-predict: %d records predicted by this worker, %.0f/s",
                        self.count, self.count / (now - self.started))
        yield json_line({**json.loads(record), **outputs})


def batch_predict(
    pipeline: beam.Pipeline,
    input_pattern: str,
    output_prefix: str,
    reader: RecordReader,
    handler: SavedModelHandler,
) -> None:
    """Adds the read -> predict -> write steps to ``pipeline``."""
    lines = pipeline | "Read" >> beam.io.ReadFromTextWithFilename(
        input_pattern, coder=BytesCoder()
    )
    parsed = lines | "Parse" >> beam.ParDo(ReadRecords(reader)).with_outputs(
        ERRORS, main="records"
    )
    _ = (
        parsed.records
        | "Predict" >> RunInference(KeyedModelHandler(handler))
        | "Format" >> beam.ParDo(FormatPredictions())
        | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=SUFFIX)
    )
    _ = parsed[ERRORS] | "WriteErrors" >> beam.io.WriteToText(
        f"{output_prefix}-{ERRORS}", file_name_suffix=SUFFIX
    )


@dataclass(frozen=True)
class Summary:
    """What a run did: its counters (Beam Metrics) and wall time."""

    records_read: int
    records_predicted: int
    records_failed: int
    seconds: float

    def as_json(self, output_prefix: str) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in COUNTERS},
            "seconds": round(self.seconds, 1),
            "texts_per_second": round(self.records_predicted / max(self.seconds, 1e-9), 1),
            "outputs": f"{output_prefix}-SSSSS-of-NNNNN{SUFFIX}",
            "errors": f"{output_prefix}-{ERRORS}-SSSSS-of-NNNNN{SUFFIX}",
        }


def run_batch_predict(
    options: PipelineOptions,
    input_pattern: str,
    output_prefix: str,
    reader: RecordReader,
    handler: SavedModelHandler,
) -> Summary:
    """Builds and runs the pipeline, waits for it, and reads its counters back."""
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    batch_predict(pipeline, input_pattern, output_prefix, reader, handler)
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    return Summary(**counter_values(result), seconds=seconds)


def counter_values(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The tfpipe counters, committed where the runner reports them, else attempted."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    values = dict.fromkeys(COUNTERS, 0)
    for counter in found:
        if counter.key.metric.name in values:
            value = counter.committed if counter.committed is not None else counter.attempted
            values[counter.key.metric.name] += value or 0
    return values
