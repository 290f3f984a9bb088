"""What ``tfpipe predict`` reads and writes: texts from arguments and ``--file`` (streamed,
as bytes), batches of them with the values of ``--text-pair`` or ``--question``, and one
JSON line per text."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class InputLayout:
    """How an export's inputs are given: TEXT arguments and ``--file`` lines feed
    ``streamed``; ``flag`` (a list option) gives ``flagged``, one value per text, or with
    ``one_for_all`` a single value for every text; ``shown`` inputs head each JSON line.
    ``kind`` says what the model does, for errors."""

    kind: str
    streamed: str
    flagged: str | None = None
    flag: str | None = None
    one_for_all: bool = False
    shown: tuple[str, ...] = ("text",)


# By the export's sorted input names (tfpipe.export's input layouts).
INPUT_LAYOUTS = {
    ("text",): InputLayout("takes single texts", "text"),
    ("text", "text_pair"): InputLayout("classifies pairs", "text", "text_pair", "--text-pair"),
    ("context", "question"): InputLayout(
        "answers questions", "context", "question", "--question", one_for_all=True,
        shown=("question", "context"),
    ),
}
FLAG_NEEDED = {
    "--text-pair": "give one --text-pair per text",
    "--question": "give one --question per context, or one for all",
}


def input_layout(input_names: Iterable[str]) -> InputLayout:
    names = tuple(sorted(input_names))
    if names not in INPUT_LAYOUTS:
        raise CommandError(f"the model's inputs {', '.join(names)} are not a tfpipe export's")
    return INPUT_LAYOUTS[names]


def input_batches(
    texts: Iterator[bytes], flag_values: dict[str, list[str] | None], layout: InputLayout,
    size: int,
) -> Iterator[dict[str, list[bytes]]]:
    """Batches of ``size`` rows, ``{input name: [...]}``; ``flag_values`` are the values of
    each input flag (``--text-pair``, ``--question``), None when not given."""
    for flag, values in flag_values.items():
        if values and flag != layout.flag:
            raise CommandError(f"this model {layout.kind}: drop {flag}")
    if layout.flag is None:
        yield from ({layout.streamed: batch} for batch in batched(texts, size))
        return
    given = [os.fsencode(value) for value in flag_values.get(layout.flag) or []]
    if not given:
        raise CommandError(f"this model {layout.kind}: {FLAG_NEEDED[layout.flag]}")
    if layout.one_for_all and len(given) == 1:
        for batch in batched(texts, size):
            yield {layout.streamed: batch, layout.flagged: given * len(batch)}
        return
    streamed = list(itertools.islice(texts, len(given) + 1))  # bounded by argv
    if len(streamed) != len(given):
        counted = f"more than {len(given)}" if len(streamed) > len(given) else len(streamed)
        raise CommandError(
            f"this model {layout.kind}: {FLAG_NEEDED[layout.flag]} (texts: {counted}, "
            f"{layout.flag} values: {len(given)})"
        )
    for start in range(0, len(streamed), size):
        rows = slice(start, start + size)
        yield {layout.streamed: streamed[rows], layout.flagged: given[rows]}


def batched(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def json_lines(
    inputs: dict[str, list[bytes]], outputs: dict[str, Any], shown: Sequence[str] = ("text",)
) -> Iterator[str]:
    """One JSON object per row: the ``shown`` inputs (invalid UTF-8 shown as U+FFFD), then
    the outputs by name, so the key order is the same on every run."""
    values = {name: outputs[name].numpy() for name in sorted(outputs)}
    for row in range(len(inputs[shown[0]])):
        record = {name: inputs[name][row].decode("utf-8", errors="replace") for name in shown}
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
