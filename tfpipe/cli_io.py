"""What ``tfpipe predict`` reads and writes: texts from arguments and ``--file`` (streamed,
as bytes), batches of them, and one JSON line per text."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

# A longer --file line is refused (naming its line) rather than read whole: a file without
# line breaks would otherwise be one text as large as the file. 10 MB texts are supported.
MAX_LINE_BYTES = 16 * 2**20


class CommandError(Exception):
    """A user-facing failure: reported as one line, exit code 1."""


def open_texts_file(path: str) -> BinaryIO:
    """``--file`` opened in binary: its bytes go to the graph as they are (invalid UTF-8
    becomes U+FFFD there), so a bad byte never stops the run."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # run_predict closes it
    except OSError as error:
        raise CommandError(f"cannot read --file {path}: {error.strerror}") from None


def input_texts(
    arguments: Sequence[str], file: BinaryIO | None, name: str | None
) -> Iterator[bytes]:
    """TEXT arguments (as the bytes the shell passed), then the file's lines, lazily."""
    yield from (os.fsencode(text) for text in arguments)
    if file is not None:
        yield from file_lines(file, "stdin" if name == "-" else name)


def file_lines(file: BinaryIO, name: str) -> Iterator[bytes]:
    """Every line, empty ones included, without its terminator (``\\n`` or ``\\r\\n``)."""
    for number in itertools.count(1):
        try:
            line = file.readline(MAX_LINE_BYTES + 2)
        except OSError as error:
            raise CommandError(f"cannot read {name} line {number}: {error.strerror}") from None
        if not line:
            return
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if len(line) > MAX_LINE_BYTES:
            raise CommandError(
                f"{name} line {number} is longer than {MAX_LINE_BYTES // 2**20} MiB; "
                "split it into shorter lines"
            )
        yield line


def input_batches(
    texts: Iterator[bytes], pairs: list[str] | None, takes_pairs: bool, size: int
) -> Iterator[dict[str, list[bytes]]]:
    """``{"text": [...]}`` batches (with ``text_pair`` for a pair model) of ``size`` rows."""
    if not takes_pairs:
        if pairs:
            raise CommandError("this model takes single texts: drop --text-pair")
        yield from ({"text": batch} for batch in batched(texts, size))
        return
    needed = "this model classifies pairs: give one --text-pair per text"
    if not pairs:
        raise CommandError(needed)
    second_texts = [os.fsencode(text) for text in pairs]
    first_texts = list(itertools.islice(texts, len(second_texts) + 1))  # bounded by argv
    if len(first_texts) != len(second_texts):
        more = len(first_texts) > len(pairs)
        counted = f"more than {len(pairs)}" if more else len(first_texts)
        raise CommandError(f"{needed} (texts: {counted}, --text-pair values: {len(pairs)})")
    for start in range(0, len(first_texts), size):
        rows = slice(start, start + size)
        yield {"text": first_texts[rows], "text_pair": second_texts[rows]}


def batched(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def json_lines(texts: list[bytes], outputs: dict[str, Any]) -> Iterator[str]:
    """One JSON object per text: ``text`` (invalid UTF-8 shown as U+FFFD), then the outputs
    by name, so the key order is the same on every run."""
    values = {name: outputs[name].numpy() for name in sorted(outputs)}
    for row, text in enumerate(texts):
        record = {"text": text.decode("utf-8", errors="replace")}
        record.update((name, json_value(value[row])) for name, value in values.items())
        yield json.dumps(record, ensure_ascii=False)


def write_lines(lines: Iterable[str]) -> None:
    """Written as UTF-8 whatever the locale, and flushed: a reader sees each batch at once."""
    sys.stdout.buffer.write("".join(f"{line}\n" for line in lines).encode("utf-8"))
    sys.stdout.buffer.flush()


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):
        return json_value(value.tolist())
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return value
