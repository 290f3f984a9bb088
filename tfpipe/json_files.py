"""JSON files from checkpoints, which are untrusted: bounded size, clear errors naming them."""

from __future__ import annotations

import json
import os


def parse_json_object(
    raw: str | bytes, source: str, kind: str, limit: int, error: type[ValueError] = ValueError
) -> dict:
    """The JSON object in `raw`, or `error` naming `source` when it is over `limit` bytes, not
    JSON, nested past Python's recursion limit, or not an object (`kind`: e.g. "config.json")."""
    _check_size(len(raw), source, kind, limit, error)
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as decode_error:
        raise error(f"{source} is not valid JSON: {decode_error}") from None
    except RecursionError:
        raise error(f"{source} is nested too deeply to be a {kind}") from None
    if not isinstance(document, dict):
        raise error(f"{source} must hold a JSON object, not {type(document).__name__}")
    return document


def read_json_object(
    path: str | os.PathLike, kind: str, limit: int, error: type[ValueError] = ValueError
) -> dict:
    """parse_json_object of a file, its size checked before a byte of it is read."""
    _check_size(os.path.getsize(path), str(path), kind, limit, error)
    with open(path, "rb") as file:
        return parse_json_object(file.read(), str(path), kind, limit, error)


def _check_size(size: int, source: str, kind: str, limit: int, error: type[ValueError]) -> None:
    if size > limit:
        raise error(
            f"{source} is {size:,} bytes, over tfpipe's limit of {limit:,} bytes for a {kind}"
        )
