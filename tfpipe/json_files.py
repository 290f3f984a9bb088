"""JSON files from checkpoints, which are untrusted: bounded size, clear errors naming them."""

from __future__ import annotations

import json


def parse_json_object(
    raw: str | bytes, source: str, kind: str, limit: int, error: type[ValueError] = ValueError
) -> dict:
    """The JSON object in `raw`, or `error` naming `source` when it is over `limit` bytes, not
    JSON, nested past Python's recursion limit, or not an object (`kind`: e.g. "config.json")."""
    if len(raw) > limit:
        raise error(
            f"{source} is {len(raw):,} bytes, over tfpipe's limit of {limit:,} bytes for a {kind}"
        )
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as decode_error:
        raise error(f"{source} is not valid JSON: {decode_error}") from None
    except RecursionError:
        raise error(f"{source} is nested too deeply to be a {kind}") from None
    if not isinstance(document, dict):
        raise error(f"{source} must hold a JSON object, not {type(document).__name__}")
    return document
