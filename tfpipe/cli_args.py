"""What every ``tfpipe`` command's parser shares: usage errors as one line, the flags each
option was given as, and the option value types."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


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
