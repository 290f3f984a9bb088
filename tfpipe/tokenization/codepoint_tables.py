"""Per-code-point tables, probed from the reference `tokenizers` implementation at build time.

Unicode facts (what is whitespace, punctuation, a lowercase mapping, a decomposition) differ
between Unicode versions, and the Rust crates behind `tokenizers` each pin their own. So tfpipe
never consults Python's `unicodedata` for them: it asks the installed `tokenizers` component
what it does with every code point, once, and stores the answer as a compact two-level table
that the graph applies with two gathers. Probing takes seconds, so results are cached on disk
keyed by the component's JSON and the `tokenizers` version.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tokenizers

MAX_CODEPOINT = 0x10FFFF
NUM_CODEPOINTS = MAX_CODEPOINT + 1
BLOCK_BITS = 7
BLOCK_SIZE = 1 << BLOCK_BITS
SURROGATES = range(0xD800, 0xE000)
# The longest run of code points asked about in one reference call (`probe_in_runs`).
PROBE_CHUNK = 4096


def all_codepoints() -> np.ndarray:
    """Every scalar value a decoded UTF-8 string can hold (surrogates cannot)."""
    cps = np.arange(NUM_CODEPOINTS, dtype=np.int64)
    return cps[(cps < SURROGATES.start) | (cps >= SURROGATES.stop)]


def cache_dir() -> Path | None:
    """Where probed tables are cached; None when no writable location exists."""
    root = os.environ.get("TFPIPE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tfpipe"
    )
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


def cached_arrays(key: dict, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """compute() once per (key, tokenizers version); later builds load the saved arrays."""
    digest = hashlib.sha256(
        json.dumps([key, tokenizers.__version__], sort_keys=True).encode()
    ).hexdigest()[:32]
    directory = cache_dir()
    path = directory / f"{digest}.npz" if directory else None
    if path is not None and path.exists():
        try:
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError):
            pass
    arrays = compute()
    if path is not None:
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    return arrays


@dataclass(frozen=True)
class CodepointMap:
    """A function from each code point to a (possibly empty) sequence of code points.

    `lengths[cp]` is the output length; `firsts[cp]` the first output code point; outputs of
    two or more code points are stored flat in `extra` from `extra_offsets[cp]`.
    """

    lengths: np.ndarray
    firsts: np.ndarray
    extra: np.ndarray
    extra_offsets: np.ndarray

    @classmethod
    def from_outputs(cls, outputs: dict[int, Sequence[int]]) -> CodepointMap:
        """Identity except for the code points given."""
        lengths = np.ones(NUM_CODEPOINTS, np.int64)
        for cp, out in outputs.items():
            lengths[cp] = len(out)
        starts = np.cumsum(lengths) - lengths
        values = np.repeat(np.arange(NUM_CODEPOINTS, dtype=np.int64), lengths)
        for cp, out in outputs.items():
            values[starts[cp] : starts[cp] + len(out)] = out
        return cls.from_flat(lengths, values)

    @classmethod
    def from_flat(cls, lengths: np.ndarray, values: np.ndarray) -> CodepointMap:
        """Build from every code point's output length and all outputs concatenated."""
        starts = np.cumsum(lengths) - lengths
        firsts = np.where(lengths > 0, values[np.minimum(starts, max(len(values) - 1, 0))], 0)
        many = lengths > 1
        extra = values[np.repeat(many, lengths)]
        offsets = np.where(many, np.cumsum(np.where(many, lengths, 0)) - lengths, 0)
        return cls(
            lengths.astype(np.int32),
            firsts.astype(np.int32),
            extra.astype(np.int32),
            offsets.astype(np.int32),
        )

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """(output length of every code point, all outputs concatenated in code point order)."""
        return self.outputs_of(np.arange(NUM_CODEPOINTS))

    def outputs_of(self, cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(output length of each of `cps`, their outputs concatenated in that order)."""
        lengths = self.lengths[cps].astype(np.int64)
        source = np.repeat(np.arange(len(cps)), lengths)
        within = np.arange(len(source)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        extra = np.concatenate([self.extra, np.zeros(1, np.int32)]).astype(np.int64)
        owner = cps[source]
        many = extra[np.where(lengths[source] > 1, self.extra_offsets[owner] + within, 0)]
        return lengths, np.where(lengths[source] == 1, self.firsts[owner], many).astype(np.int64)

    def changed(self) -> np.ndarray:
        """The code points it does not map to themselves (few: a map is mostly identity)."""
        identity = np.arange(NUM_CODEPOINTS)
        return np.flatnonzero((self.lengths != 1) | (self.firsts != identity))

    def translation(self) -> dict[int, str]:
        """The code points it changes → their outputs, for `str.translate`."""
        changed = self.changed()
        lengths, values = self.outputs_of(changed)
        starts = np.cumsum(lengths) - lengths
        return {
            int(cp): "".join(map(chr, values[start : start + length].tolist()))
            for cp, start, length in zip(changed, starts, lengths, strict=True)
        }

    def is_identity(self) -> bool:
        return self.changed().size == 0

    def then(self, after: CodepointMap) -> CodepointMap:
        """The map that applies self, then `after`, to each code point.

        Only the code points self changes need composing (the rest take `after`'s outputs
        as they are), which keeps this to thousands of values, not a million."""
        changed = self.changed()
        lengths, middle = self.outputs_of(changed)
        counts, values = after.outputs_of(middle)
        owner = np.repeat(np.arange(len(changed)), lengths)
        new_lengths = np.bincount(owner, weights=counts, minlength=len(changed)).astype(np.int64)
        new_starts = np.cumsum(new_lengths) - new_lengths
        # Every code point's outputs as a slice of after's extra followed by the new values.
        combined = np.concatenate([after.extra, values, [0]]).astype(np.int32)
        all_lengths = after.lengths.astype(np.int64)
        all_lengths[changed] = new_lengths
        starts = after.extra_offsets.astype(np.int64)
        starts[changed] = len(after.extra) + new_starts
        firsts = after.firsts.copy()
        firsts[changed] = np.where(new_lengths > 0, combined[len(after.extra) + new_starts], 0)
        many = np.flatnonzero(all_lengths > 1)
        counts_many = all_lengths[many]
        offsets = np.zeros(NUM_CODEPOINTS, np.int64)
        offsets[many] = np.cumsum(counts_many) - counts_many
        source = np.repeat(starts[many] - offsets[many], counts_many)
        return CodepointMap(
            all_lengths.astype(np.int32),
            firsts,
            combined[source + np.arange(len(source))],
            offsets.astype(np.int32),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "lengths": self.lengths,
            "firsts": self.firsts,
            "extra": self.extra,
            "extra_offsets": self.extra_offsets,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CodepointMap:
        return cls(arrays["lengths"], arrays["firsts"], arrays["extra"], arrays["extra_offsets"])


def probe_in_runs(
    chars: str, settle: Callable[[str], bool], each: Callable[[str], None], run: int
) -> None:
    """Call `each` on every character of `chars` but those in runs of up to `run` characters
    that `settle` settles as a whole (returning True); a run it does not is halved, down to
    single characters. What `settle` finds for a run must be what `each` would find for
    every character in it; most code points are alike, so the reference is asked about
    once per exception, not once per code point."""

    def visit(part: str) -> None:
        if len(part) == 1:
            each(part)
        elif not settle(part):
            half = len(part) // 2
            visit(part[:half])
            visit(part[half:])

    for start in range(0, len(chars), run):
        visit(chars[start : start + run])


def codepoint_chars() -> str:
    """Every code point's character, in order, as one string (decoded as UTF-32: building
    it a character at a time took longer than some probes)."""
    return all_codepoints().astype("<u4").tobytes().decode("utf-32-le")


def unchanged_by(function: Callable[[str], str]) -> Callable[[str], bool]:
    """Whether `function` leaves a run unchanged, in order and reversed. For a function whose
    image of a text joins its code points' images (a local map; NFD's reordering only moves
    marks), that leaves each code point of the run unchanged."""
    return lambda run: function(run) == run and function(run[::-1]) == run[::-1]


def probe_map(
    probe: Callable[[str], str], unchanged: Callable[[str], bool] | None = None
) -> CodepointMap:
    """Tabulate a string function over every code point: its image of each one alone.
    With `unchanged`, which must imply that `probe` leaves every code point of a run it
    clears unchanged, in runs (`probe_in_runs`)."""
    outputs: dict[int, list[int]] = {}

    def record(char: str) -> None:
        out = probe(char)
        if out != char:
            outputs[ord(char)] = [ord(c) for c in out]

    run = 1 if unchanged is None else PROBE_CHUNK
    probe_in_runs(codepoint_chars(), unchanged or (lambda _: False), record, run)
    return CodepointMap.from_outputs(outputs)


def one_piece(pre_tokenizer, text: str) -> bool:
    """Whether a reference pre-tokenizer leaves `text` whole: one piece, all of it."""
    return [offsets for _, offsets in pre_tokenizer.pre_tokenize_str(text)] == [(0, len(text))]


def probe_classes(
    classify: Callable[[str], int], uniform: Callable[[str], int | None] | None = None
) -> np.ndarray:
    """Tabulate a small integer class per code point (0 for surrogates). With `uniform`, a
    run of code points it gives a class is that class throughout (it must imply that)."""
    classes = np.zeros(NUM_CODEPOINTS, np.int32)

    def record(char: str) -> None:
        classes[ord(char)] = classify(char)

    def settle(run: str) -> bool:
        found = uniform(run)
        if found is not None:
            classes[[ord(char) for char in run]] = found
        return found is not None

    if uniform is None:
        probe_in_runs(codepoint_chars(), lambda _: False, record, 1)
    else:
        probe_in_runs(codepoint_chars(), settle, record, PROBE_CHUNK)
    return classes


def combining_classes(nfd: Callable[[str], str]) -> np.ndarray:
    """Canonical combining class of every code point, as the reference NFD orders marks.

    Python's `unicodedata` gives the values (they are stable once assigned), but the reference
    may use an older or newer Unicode: a code point counts as a non-starter only where the
    reference actually reorders it past U+0345 (ccc 240), the highest class.
    """
    ccc = np.zeros(NUM_CODEPOINTS, np.int32)
    anchor = "\u0345"
    ccc[ord(anchor)] = 240

    def after_anchor(chars: str) -> str:
        return "".join("a" + anchor + char for char in chars)

    def record(char: str) -> None:
        if nfd(after_anchor(char)) == "a" + char + anchor:
            value = unicodedata.combining(char)
            if value == 0:
                raise ValueError(
                    f"tokenizers treats U+{ord(char):04X} as a combining mark but this "
                    f"Python's Unicode {unicodedata.unidata_version} does not know it; "
                    "upgrade Python"
                )
            ccc[ord(char)] = value

    marks, unassigned = [], []
    for char in codepoint_chars():
        if unicodedata.combining(char):
            marks.append(char)
        elif unicodedata.category(char) == "Cn":
            unassigned.append(char)
    for char in marks:
        if char != anchor:
            record(char)
    # Code points this Python does not know, in runs: NFD leaving a run unchanged
    # reorders (and decomposes) none of them.
    probe_in_runs("".join(unassigned), lambda run: nfd(after_anchor(run)) == after_anchor(run),
                  record, PROBE_CHUNK)
    return ccc


@dataclass(frozen=True)
class BlockTable:
    """A dense per-code-point int32 array stored as deduplicated 128-entry blocks.

    `block_starts` holds each block's first row in `blocks`; a single column is stored flat,
    so a lookup is five small ops (batch-1 requests do several).
    """

    block_starts: np.ndarray
    blocks: np.ndarray

    @classmethod
    def from_dense(cls, *columns: np.ndarray) -> BlockTable:
        """Pack one or more dense columns; `lookup` returns them in the same order."""
        stacked = np.stack([c.astype(np.int32) for c in columns], axis=-1)
        by_block = stacked.reshape(NUM_CODEPOINTS // BLOCK_SIZE, BLOCK_SIZE * len(columns))
        first_seen: dict[bytes, int] = {}
        index = np.array(
            [first_seen.setdefault(row.tobytes(), len(first_seen)) for row in by_block], np.int32
        )
        unique_rows = np.unique(index, return_index=True)[1]
        blocks = by_block[unique_rows].reshape(-1, len(columns))
        return cls(index * BLOCK_SIZE, blocks[:, 0] if len(columns) == 1 else blocks)

    def lookup(self, codepoints: tf.Tensor) -> list[tf.Tensor]:
        """Per-code-point values of each packed column, for an int32 tensor of code points."""
        start = tf.gather(self.block_starts, tf.bitwise.right_shift(codepoints, BLOCK_BITS))
        rows = tf.gather(self.blocks, start + tf.bitwise.bitwise_and(codepoints, BLOCK_SIZE - 1))
        return tf.unstack(rows, axis=-1) if self.blocks.ndim > 1 else [rows]
