"""RE2 pattern builders: TensorFlow's regex ops use RE2, so patterns are written for it."""

from __future__ import annotations

import numpy as np


def re2_literal(text: str) -> str:
    """An RE2 pattern matching exactly `text`."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


def re2_class(flags: np.ndarray) -> str:
    """An RE2 character class of the code points where `flags` is nonzero."""
    points = np.flatnonzero(flags)
    breaks = np.flatnonzero(np.diff(points) != 1)
    starts = np.concatenate([points[:1], points[breaks + 1]])
    ends = np.concatenate([points[breaks], points[-1:]])
    ranges = (f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in zip(starts, ends, strict=True))
    return "[" + "".join(ranges) + "]"
