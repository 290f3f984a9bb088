"""Patterns written for RE2, the regex engine of TensorFlow's string ops.

`compile_pattern` is the last step of running a pattern in RE2 (see regex/__init__): each atom
becomes an RE2 class of group representatives, and a trailing look-ahead
`X(?!C)` / `X(?=C)` (GPT-4-style `\\s+(?!\\S)`), which RE2 lacks, is rewritten with a
sentinel: the graph inserts it after every character whose successor satisfies the look-ahead,
every atom may swallow one after itself, and the look-ahead becomes "the last character of X
is followed by the sentinel" (or by the end of the piece, for `(?!C)`). Code points below
`FIRST_REPRESENTATIVE` are the markers the graph brackets matches with and the sentinel.

Assertions run as RE2's own: `\\A`, `\\z`; `^`, `$` as `(?m:^)`, `(?m:$)` with `\\n`
standing for itself; `\\b`, `\\B` (ASCII in RE2) with the groups of Oniguruma's word characters
represented by ASCII letters, digits and `_`, and only they. Two differences are refused rather
than rewritten: Oniguruma's `^` never matches at the very end, so it must be followed by a
character; and the sentinel would sit between neighbours these assertions look at.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS
from tfpipe.tokenization.regex.char_classes import (
    MAX_ATOMS,
    check_case_folding,
    group_ids,
    members_of,
    word_members,
)
from tfpipe.tokenization.regex.parser import (
    Alternation,
    Assertion,
    Atom,
    LookAhead,
    PatternError,
    Repeat,
    Sequence,
    can_match_empty,
    pattern_error,
    tree_atoms,
    walk,
)

MATCH_START, MATCH_END, SENTINEL = 1, 2, 3
FIRST_REPRESENTATIVE = 4
NEWLINE = 0x0A
RE2_WORD = np.array([ord(c) for c in string.digits + string.ascii_uppercase + "_"
                     + string.ascii_lowercase])
RE2_ASSERTIONS = {"\\A": "\\A", "\\z": "\\z", "^": "(?m:^)", "$": "(?m:$)", "\\b": "\\b",
                  "\\B": "\\B"}


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


def _group_representatives(
    count: int, word: np.ndarray | None, newline: int | None, pattern: str
) -> np.ndarray:
    """Code points standing for the groups: one UTF-8 byte each while they last.

    `word` (per group, with `\\b`): word groups take RE2's word characters, the others none;
    `newline` (the group of `\\n`, with `^`/`$`): it alone takes `\\n`.
    """
    one_byte = np.arange(FIRST_REPRESENTATIVE, 0x80)
    reserved = np.zeros(len(one_byte), bool)
    if word is not None:
        reserved |= np.isin(one_byte, RE2_WORD)
    if newline is not None:
        reserved |= one_byte == NEWLINE
    pool = np.concatenate([one_byte[~reserved], 0x100 + np.arange(count)])
    result = np.zeros(count, np.int64)
    rest = np.ones(count, bool)
    if word is not None:
        if word.sum() > len(RE2_WORD):
            raise pattern_error(pattern, f"\\b with more than {len(RE2_WORD)} kinds of word "
                                         "character")
        result[word] = RE2_WORD[: word.sum()]
        rest &= ~word
    if newline is not None:
        result[newline] = NEWLINE
        rest[newline] = False
    result[rest] = pool[: rest.sum()]
    return result


def _re2_set(representatives: np.ndarray) -> str:
    if len(representatives) == 0:
        return f"\\x{{{MATCH_START:x}}}"
    return "[" + "".join(f"\\x{{{r:x}}}" for r in representatives) + "]"


class _Emitter:
    """Writes the parsed pattern as RE2 over group representatives."""

    def __init__(self, classes: dict[Atom, str], sentinel: bool) -> None:
        self.classes = classes
        self.swallow = f"\\x{{{SENTINEL:x}}}" if sentinel else ""

    def atom(self, atom: Atom, swallow: str = "?") -> str:
        if not self.swallow:
            return self.classes[atom]
        return f"(?:{self.classes[atom]}{self.swallow}{swallow})"

    def node(self, node) -> str:
        if isinstance(node, Atom):
            return self.atom(node)
        if isinstance(node, Assertion):
            return RE2_ASSERTIONS[node.kind]
        if isinstance(node, Repeat):
            return f"(?:{self.node(node.item)}){_bounds(node.low, node.high)}{'?' * node.lazy}"
        if isinstance(node, Sequence):
            return self.sequence(node)
        return "(?:" + "|".join(self.sequence(b) for b in node.branches) + ")"

    def sequence(self, sequence: Sequence) -> str:
        items = sequence.items
        if items and isinstance(items[-1], LookAhead):
            return self._with_look_ahead(items[:-1], items[-1])
        return "".join(self.node(item) for item in items)

    def _with_look_ahead(self, items: list, look: LookAhead) -> str:
        """`X(?=C)`: X's last character must swallow the sentinel; `(?!C)` also allows the end."""
        *head, last = items or [None]
        repeat = last if isinstance(last, Repeat) else Repeat(last, 1, 1, False)
        if not isinstance(repeat.item, Atom) or repeat.low < 1 or repeat.lazy:
            raise PatternError("look-ahead must follow one greedy, non-optional atom")
        prefix = "".join(self.node(item) for item in head)
        rest = Repeat(repeat.item, repeat.low - 1, None if repeat.high is None else repeat.high - 1,
                      False)
        body = prefix + self.node(rest) if (rest.high is None or rest.high > 0) else prefix
        followed = body + self.atom(repeat.item, swallow="")
        if not look.negative:
            return followed
        return f"(?:{body}{self.classes[repeat.item]}\\z|{followed})"


def _bounds(low: int, high: int | None) -> str:
    return f"{{{low},}}" if high is None else f"{{{low},{high}}}"


def _check_re2_compiles(emitted: str, pattern: str) -> None:
    """Fail at build time, not on the first request, if RE2 refuses the rewritten pattern."""
    with tf.init_scope():
        try:
            tf.strings.regex_replace(tf.constant([""]), emitted, "")
        except tf.errors.InvalidArgumentError as error:
            raise pattern_error(pattern, f"RE2 cannot run it: {error.message}") from None


def _look_ahead(tree: Alternation, pattern: str) -> LookAhead | None:
    """The one look-ahead class of the pattern, checked to sit where the rewrite is exact."""
    looks = [a for a in walk(tree) if isinstance(a, LookAhead)]
    tails = [b.items[-1] for b in tree.branches if b.items and isinstance(b.items[-1], LookAhead)]
    if len(looks) != len(tails):
        raise pattern_error(pattern, "look-ahead only at the end of a top-level alternative")
    if len({look.atom for look in looks}) > 1 or len({look.negative for look in looks}) > 1:
        raise pattern_error(pattern, "more than one kind of look-ahead")
    if looks and can_match_empty(tree):
        raise pattern_error(pattern, "look-ahead in a pattern that can match empty text")
    return looks[0] if looks else None


def _assertion_kinds(tree: Alternation, pattern: str, look: LookAhead | None) -> set[str]:
    """The pattern's assertion kinds, checked to run exactly as RE2's (see the module doc)."""
    kinds = {node.kind for node in walk(tree) if isinstance(node, Assertion)}
    if look is not None and kinds - {"\\A", "\\z"}:
        raise pattern_error(pattern, "\\b, \\B, ^ or $ together with a look-ahead")
    for node in walk(tree):
        if isinstance(node, Sequence):
            for index, item in enumerate(node.items):
                if item == Assertion("^") and can_match_empty(Sequence(node.items[index + 1 :])):
                    raise pattern_error(pattern, "'^' not followed by a character")
    return kinds


@dataclass(frozen=True)
class Re2Pattern:
    """A parsed pattern as RE2 over group representatives, with the tables the graph needs.

    `groups`: group per code point; `representatives`: the code point standing for each group;
    `sentinel_after`: per group, whether a sentinel follows a character of it (None without a
    look-ahead).
    """

    re2: str
    groups: np.ndarray
    representatives: np.ndarray
    sentinel_after: np.ndarray | None


def compile_pattern(tree: Alternation, pattern: str) -> Re2Pattern:
    """Group the code points no atom tells apart and write the tree as RE2 over the groups."""
    look = _look_ahead(tree, pattern)
    kinds = _assertion_kinds(tree, pattern, look)
    atoms = list(dict.fromkeys(tree_atoms(tree)))
    if len(atoms) > MAX_ATOMS:
        raise pattern_error(pattern, f"more than {MAX_ATOMS} character sets")
    members = [members_of(a) for a in atoms]
    check_case_folding(tree, pattern)
    word = word_members() if kinds & {"\\b", "\\B"} else None
    newline = np.arange(NUM_CODEPOINTS) == NEWLINE if kinds & {"^", "$"} else None
    groups = group_ids(members + [s for s in (word, newline) if s is not None])
    count = int(groups.max()) + 1
    first = np.unique(groups, return_index=True)[1]
    representatives = _group_representatives(
        count,
        None if word is None else word[first],
        None if newline is None else int(groups[NEWLINE]),
        pattern,
    )
    in_atom = {a: m[first] for a, m in zip(atoms, members, strict=True)}
    classes = {a: _re2_set(representatives[in_atom[a]]) for a in atoms}
    sentinel_after = None
    if look is not None:
        sentinel_after = in_atom[look.atom] != look.negative
    emitted = _Emitter(classes, look is not None).node(tree)
    _check_re2_compiles(emitted, pattern)
    return Re2Pattern(emitted, groups, representatives.astype(np.int32), sentinel_after)
