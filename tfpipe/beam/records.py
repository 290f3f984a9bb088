"""What ``tfpipe batch-predict`` reads: one input line becomes a record (echoed in the output)
and the export's inputs, or an error naming why it cannot be read.

Plain Python, no Beam: the pipeline (tfpipe/beam/pipeline.py) calls ``RecordReader.read`` in
a DoFn, and tests call it directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tfpipe.cli_io import MAX_LINE_BYTES

# A line refused for its length (over MAX_LINE_BYTES) is shown cut to this many characters in
# its error record, so one huge line cannot make a huge errors file.
SHOWN_CHARS = 1000


class RecordError(ValueError):
    """Why a line is not a record: the reason written to the errors output."""


@dataclass(frozen=True)
class RecordReader:
    """Reads lines as plain text (``jsonl=False``: the line is the first input's text) or as
    JSON objects whose ``fields`` (export input name -> JSON field) are strings."""

    fields: dict[str, str]
    jsonl: bool

    def read(self, line: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
        """(the record to echo, ``{input name: UTF-8 bytes}``); RecordError if unreadable."""
        if len(line) > MAX_LINE_BYTES:
            raise RecordError(f"the line is longer than {MAX_LINE_BYTES // 2**20} MiB")
        if not self.jsonl:
            (name,) = self.fields
            return {name: line.decode("utf-8", errors="replace")}, {name: line}
        record = json_object(line)
        return record, {name: field_bytes(record, field) for name, field in self.fields.items()}

    def error_record(self, file: str, line: bytes, reason: str) -> dict[str, str]:
        """The errors output's record: where, why, and the line (cut if very long)."""
        shown = line.decode("utf-8", errors="replace") if len(line) <= MAX_LINE_BYTES else (
            line[: 4 * SHOWN_CHARS].decode("utf-8", errors="replace")[:SHOWN_CHARS]
        )
        return {"file": file, "error": reason, "line": shown}


def json_object(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except UnicodeDecodeError as error:
        raise RecordError(f"not UTF-8: {error.reason} at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise RecordError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise RecordError(f"not a JSON object but {json_type(value)}")
    return value


def field_bytes(record: dict[str, Any], field: str) -> bytes:
    if field not in record:
        raise RecordError(f"no field {field!r}")
    value = record[field]
    if not isinstance(value, str):
        raise RecordError(f"field {field!r} is {json_type(value)}, not a string")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"field {field!r} has a lone surrogate (\\ud800-\\udfff)") from None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "an object"
