"""How much of each sweep a run covers: a representative sample by default, all of it in
``make test-full`` (``TFPIPE_TEST_SAMPLE=full``).

The default run keeps every kind of input a sweep has (the hand-written edge cases always,
then an even spread of the rest), so each family and mode is still checked; the full run
adds volume, which is what finds the rare text a sample misses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import pytest

FULL = os.environ.get("TFPIPE_TEST_SAMPLE", "small") == "full"

T = TypeVar("T")


def sample(items: Sequence[T], size: int, keep_first: int = 0) -> list[T]:
    """``items`` whole in a full run; otherwise the first ``keep_first`` and an even spread
    of the rest, ``size`` in all."""
    items = list(items)
    if FULL or len(items) <= size:
        return items
    return items[:keep_first] + spread(items[keep_first:], size - keep_first)


def spread(items: Sequence[T], size: int) -> list[T]:
    """An even spread of ``size`` of ``items`` (all of them if fewer), in any run: for
    sweeps whose size a test sets itself."""
    items = list(items)
    step = max(1, len(items) // max(1, size))
    return items[::step][:size]


def examples(default: int, full: int) -> int:
    """A Hypothesis example count: ``full`` in a full run."""
    return full if FULL else default


def slow_beyond(values: Sequence, default: Sequence) -> list:
    """Parametrize ``values`` (tuples for several argument names), all but the ``default``
    ones (the default run's representatives) marked ``slow``."""
    return [
        value if value in default
        else pytest.param(*value if isinstance(value, tuple) else (value,), marks=pytest.mark.slow)
        for value in values
    ]


def slow_among(values: Sequence, slow: Sequence) -> list:
    """Parametrize ``values``, the ``slow`` ones (what the default run covers elsewhere)
    marked ``slow``."""
    return slow_beyond(values, [value for value in values if value not in slow])
