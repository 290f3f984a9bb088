"""JSON files from checkpoints, which are untrusted: bounded size, clear errors naming them."""

from __future__ import annotations

import json
import os
from typing import Any


def parse_json(
    raw: str | bytes, source: str, kind: str, limit: int, error: type[ValueError] = ValueError
) -> Any:
    """The JSON value in `raw`, or `error` naming `source` when it is over `limit` bytes, not
    JSON, or nested past Python's recursion limit (`kind`: e.g. "config.json")."""
    _check_size(len(raw), source, kind, limit, error)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as decode_error:
        raise error(f"{source} is not valid JSON: {decode_error}") from None
    except RecursionError:
        raise error(f"{source} is nested too deeply to be a {kind}") from None


def parse_json_object(
    raw: str | bytes, source: str, kind: str, limit: int, error: type[ValueError] = ValueError
) -> dict:
    """parse_json of a document that must be a JSON object."""
    return _object(parse_json(raw, source, kind, limit, error), source, error)


def read_json(
    path: str | os.PathLike, kind: str, limit: int, error: type[ValueError] = ValueError
) -> Any:
    """parse_json of a file, its size checked before a byte of it is read."""
    _check_size(os.path.getsize(path), str(path), kind, limit, error)
    with open(path, "rb") as file:
        return parse_json(file.read(), str(path), kind, limit, error)


def read_json_object(
    path: str | os.PathLike, kind: str, limit: int, error: type[ValueError] = ValueError
) -> dict:
    """read_json of a file that must hold a JSON object."""
    return _object(read_json(path, kind, limit, error), str(path), error)


def _object(document: Any, source: str, error: type[ValueError]) -> dict:
    if not isinstance(document, dict):
        raise error(f"{source} must hold a JSON object, not {type(document).__name__}")
    return document


def _check_size(size: int, source: str, kind: str, limit: int, error: type[ValueError]) -> None:
    if size > limit:
        raise error(
            f"{source} is {size:,} bytes, over tfpipe's limit of {limit:,} bytes for a {kind}"
        )
