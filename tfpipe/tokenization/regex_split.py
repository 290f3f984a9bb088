"""`Split` with a regex pattern, run in the graph by RE2 with the reference's semantics.

`tokenizers` matches Split patterns with Oniguruma; TensorFlow's regex ops use RE2. The two
agree on leftmost-first alternation and greedy/lazy repetition, but not on Unicode tables,
case folding or look-ahead, which RE2 lacks. So a pattern is compiled in three steps:

1. parse it into single-character atoms (`\\p{L}`, `[^\\s\\p{L}]`, `(?i:s)`, `.`, literals)
   combined by sequence, alternation, groups and repetition;
2. ask the installed `tokenizers` which code points each atom matches, and group the code
   points that no atom tells apart: the graph maps every character to its group's
   representative, and each atom becomes an RE2 class of representatives — no Unicode
   table or case folding is left to RE2;
3. rewrite a trailing look-ahead `X(?!C)` / `X(?=C)` (GPT-4-style `\\s+(?!\\S)`) with a
   sentinel: the graph inserts it after every character whose successor satisfies the
   look-ahead, every atom may swallow one after itself, and the look-ahead becomes "the last
   character of X is followed by the sentinel" (or by the end of the piece, for `(?!C)`).

In the graph each piece is encoded as a string of representatives, RE2 brackets the matches
with markers, and the split behaviour is applied to the resulting match/gap segments exactly
as `tokenizers` folds them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    BlockTable,
    all_codepoints,
    cached_arrays,
)
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.ragged_ops import expand_values, following, previous, repeat_range, select
from tfpipe.tokenization.reference import reference_tokenizer

SECTION = "pre_tokenizer"
MATCH_START, MATCH_END, SENTINEL = 1, 2, 3
FIRST_REPRESENTATIVE = 4
# Atoms are probed on a string of every code point; more than this many is a hostile pattern.
MAX_ATOMS = 256
MAX_PATTERN_LENGTH = 10_000

SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "e": "\x1b"}
CLASS_ESCAPES = set("sSdDwWhH")
QUANTIFIERS = "*+?{"


def _error(pattern: str, reason: str) -> UnsupportedComponentError:
    return UnsupportedComponentError(SECTION, "Split", f"pattern {pattern!r}: {reason}")


@dataclass(frozen=True)
class Atom:
    """One character from a set: Oniguruma source and whether (?i) applies to it."""

    source: str
    ignore_case: bool = False


@dataclass(frozen=True)
class LookAhead:
    atom: Atom
    negative: bool


@dataclass
class Repeat:
    item: object
    low: int
    high: int | None
    lazy: bool


@dataclass
class Sequence:
    items: list = field(default_factory=list)


@dataclass
class Alternation:
    branches: list[Sequence]


class PatternParser:
    """Parses the Oniguruma (Ruby syntax) subset that tokenizer patterns use.

    Anything outside it — anchors, back-references, look-behind, atomic groups, possessive
    repetition, look-ahead anywhere but at the end of a top-level branch — is an
    UnsupportedComponentError, never a silently different split.
    """

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise _error(pattern[:50] + "…", f"longer than {MAX_PATTERN_LENGTH} characters")
        self.pattern = pattern
        self.pos = 0

    def parse(self) -> Alternation:
        tree = self._alternation(ignore_case=False, depth=0)
        if self.pos != len(self.pattern):
            raise _error(self.pattern, f"unbalanced ')' at {self.pos}")
        return tree

    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.pattern[index] if index < len(self.pattern) else ""

    def _alternation(self, ignore_case: bool, depth: int) -> Alternation:
        if depth > 50:
            raise _error(self.pattern, "groups nested deeper than 50")
        branches = [Sequence()]
        while self.pos < len(self.pattern) and self._peek() != ")":
            char = self._peek()
            if char == "|":
                self.pos += 1
                branches.append(Sequence())
                continue
            if char == "(" and self.pattern.startswith(("(?i)", "(?-i)"), self.pos):
                ignore_case = self.pattern[self.pos + 2] == "i"
                self.pos += 4 if ignore_case else 5
                continue
            item = self._item(ignore_case, depth)
            branches[-1].items.append(self._quantified(item))
        return Alternation(branches)

    def _item(self, ignore_case: bool, depth: int):
        char = self._peek()
        if char == "(":
            return self._group(ignore_case, depth)
        if char == "[":
            return Atom(self._bracket(), ignore_case)
        if char == "\\":
            return Atom(self._escape(), ignore_case)
        if char in "^$":
            raise _error(self.pattern, f"anchor {char!r}")
        if char in QUANTIFIERS and not (char == "{" and not self._is_bound()):
            raise _error(self.pattern, f"nothing to repeat at {self.pos}")
        self.pos += 1
        return Atom(char if char == "." else _literal(char), ignore_case)

    def _group(self, ignore_case: bool, depth: int):
        start = self.pos
        self.pos += 1
        look_ahead = None
        if self._peek() == "?":
            head = self.pattern[self.pos : self.pos + 3]
            if head.startswith(("?=", "?!")):
                look_ahead = head[1] == "!"
                self.pos += 2
            elif head.startswith("?:"):
                self.pos += 2
            elif head in ("?i:",):
                ignore_case = True
                self.pos += 3
            elif self.pattern.startswith("?-i:", self.pos):
                ignore_case = False
                self.pos += 4
            else:
                raise _error(self.pattern, f"group syntax at {start}")
        inner = self._alternation(ignore_case, depth + 1)
        if self._peek() != ")":
            raise _error(self.pattern, f"unclosed group at {start}")
        self.pos += 1
        if look_ahead is None:
            return inner
        atom = _single_atom(inner)
        if atom is None:
            raise _error(self.pattern, "look-ahead of more than one character")
        return LookAhead(atom, look_ahead)

    def _is_bound(self) -> bool:
        end = self.pattern.find("}", self.pos)
        body = self.pattern[self.pos + 1 : end] if end > 0 else ""
        parts = body.split(",")
        return (
            end > 0
            and len(parts) <= 2
            and all(p.isdigit() or p == "" for p in parts)
            and any(parts)
        )

    def _quantified(self, item):
        char = self._peek()
        if not char or char not in QUANTIFIERS or (char == "{" and not self._is_bound()):
            return item
        if isinstance(item, LookAhead):
            raise _error(self.pattern, "repeated look-ahead")
        if char == "{":
            end = self.pattern.index("}", self.pos)
            parts = self.pattern[self.pos + 1 : end].split(",")
            low = int(parts[0] or 0)
            high = int(parts[-1]) if parts[-1] else None
            if len(parts) == 1:
                high = low
            self.pos = end + 1
        else:
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
            self.pos += 1
        if high is not None and (high < low or high > 1000):
            raise _error(self.pattern, f"repetition bounds {{{low},{high}}}")
        lazy = self._peek() == "?"
        if self._peek() == "+":
            raise _error(self.pattern, "possessive repetition")
        self.pos += lazy
        if self._peek() in "*+?" and self._peek():
            raise _error(self.pattern, f"nested quantifier at {self.pos}")
        return Repeat(item, low, high, lazy)

    def _bracket(self) -> str:
        """The source of a bracket class, nested classes and escapes included."""
        start = self.pos
        self.pos += 1
        depth = 1
        if self._peek() == "^":
            self.pos += 1
        if self._peek() == "]":
            self.pos += 1
        while depth:
            char = self._peek()
            if not char:
                raise _error(self.pattern, f"unclosed '[' at {start}")
            if char == "\\":
                self.pos += 2
                continue
            depth += {"[": 1, "]": -1}.get(char, 0)
            self.pos += 1
        return self.pattern[start : self.pos]

    def _escape(self) -> str:
        """The source of one escaped single-character atom."""
        start = self.pos
        letter = self._peek(1)
        if not letter:
            raise _error(self.pattern, "trailing backslash")
        self.pos += 2
        if letter in "pP" and self._peek() == "{":
            end = self.pattern.find("}", self.pos)
            if end < 0:
                raise _error(self.pattern, f"unclosed \\{letter}{{ at {start}")
            self.pos = end + 1
            return self.pattern[start : self.pos]
        if letter in CLASS_ESCAPES:
            return self.pattern[start : self.pos]
        if letter in SIMPLE_ESCAPES:
            return _literal(SIMPLE_ESCAPES[letter])
        if letter == "x":
            return _literal(chr(self._hex_digits(2, braces=True)))
        if letter == "u":
            return _literal(chr(self._hex_digits(4, braces=False)))
        if letter.isalnum():
            raise _error(self.pattern, f"escape \\{letter}")
        return _literal(letter)

    def _hex_digits(self, count: int, braces: bool) -> int:
        if braces and self._peek() == "{":
            end = self.pattern.find("}", self.pos)
            digits = self.pattern[self.pos + 1 : end] if end > 0 else ""
            self.pos = end + 1
        else:
            digits = self.pattern[self.pos : self.pos + count]
            self.pos += count
        try:
            value = int(digits, 16)
        except ValueError:
            raise _error(self.pattern, f"hex escape {digits!r}") from None
        if not 0 <= value < NUM_CODEPOINTS or 0xD800 <= value < 0xE000:
            raise _error(self.pattern, f"code point {value:#x}")
        return value


def _literal(char: str) -> str:
    """Oniguruma source matching exactly `char`."""
    return f"\\x{{{ord(char):x}}}"


def _single_atom(tree: Alternation) -> Atom | None:
    if len(tree.branches) == 1 and len(tree.branches[0].items) == 1:
        item = tree.branches[0].items[0]
        if isinstance(item, Atom):
            return item
    return None


def _atoms(node) -> list[Atom]:
    if isinstance(node, Atom):
        return [node]
    if isinstance(node, LookAhead):
        return [node.atom]
    if isinstance(node, Repeat):
        return _atoms(node.item)
    children = node.branches if isinstance(node, Alternation) else node.items
    return [atom for child in children for atom in _atoms(child)]


def atom_members(atom: Atom) -> np.ndarray:
    """Which code points the reference's regex engine matches with `atom` (bool per code point).

    Probed on one string of every code point: a single-character atom matches each
    character on its own, so the characters it removes are exactly its members.
    """
    source = f"(?i:{atom.source})" if atom.ignore_case else atom.source

    def compute() -> dict[str, np.ndarray]:
        from tokenizers import Regex, pre_tokenizers

        codepoints = all_codepoints()
        text = "".join(map(chr, codepoints.tolist()))
        try:
            splitter = pre_tokenizers.Split(Regex(source), "removed")
        except Exception as error:
            raise UnsupportedComponentError(SECTION, "Split", f"{source!r}: {error}") from None
        kept = np.zeros(len(codepoints) + 1, np.int32)
        for _, (begin, end) in splitter.pre_tokenize_str(text):
            kept[begin] += 1
            kept[end] -= 1
        members = np.zeros(NUM_CODEPOINTS, bool)
        members[codepoints[np.cumsum(kept)[:-1] == 0]] = True
        return {"members": members}

    return cached_arrays({"regex-atom": source}, compute)["members"]


def _groups(sets: list[np.ndarray]) -> np.ndarray:
    """Group id per code point: code points in exactly the same sets share a group."""
    signature = np.zeros((NUM_CODEPOINTS, (len(sets) + 63) // 64), np.uint64)
    for index, members in enumerate(sets):
        signature[:, index // 64] |= members.astype(np.uint64) << np.uint64(index % 64)
    _, groups = np.unique(signature, axis=0, return_inverse=True)
    return groups.reshape(-1).astype(np.int32)


def _representatives(count: int) -> np.ndarray:
    """Code points standing for the groups: one UTF-8 byte each while they last."""
    one_byte = np.arange(FIRST_REPRESENTATIVE, 0x80)
    return np.concatenate([one_byte, 0x100 + np.arange(max(count - len(one_byte), 0))])[:count]


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
            raise UnsupportedComponentError(
                SECTION, "Split", "look-ahead must follow one greedy, non-optional atom"
            )
        prefix = "".join(self.node(item) for item in head)
        rest = Repeat(repeat.item, repeat.low - 1, None if repeat.high is None else repeat.high - 1,
                      False)
        body = prefix + self.node(rest) if (rest.high is None or rest.high > 0) else prefix
        followed = body + self.atom(repeat.item, swallow="")
        if not look.negative:
            return followed
        return f"(?:{body}{self.classes[repeat.item]}\\z|{followed})"


def _check_re2_compiles(emitted: str, pattern: str) -> None:
    """Fail at build time, not on the first request, if RE2 refuses the rewritten pattern."""
    with tf.init_scope():
        try:
            tf.strings.regex_replace(tf.constant([""]), emitted, "")
        except tf.errors.InvalidArgumentError as error:
            raise _error(pattern, f"RE2 cannot run it: {error.message}") from None


def _bounds(low: int, high: int | None) -> str:
    return f"{{{low},}}" if high is None else f"{{{low},{high}}}"


def _look_ahead(tree: Alternation, pattern: str) -> LookAhead | None:
    """The one look-ahead class of the pattern, checked to sit where the rewrite is exact."""
    looks = [a for a in _walk(tree) if isinstance(a, LookAhead)]
    tails = [b.items[-1] for b in tree.branches if b.items and isinstance(b.items[-1], LookAhead)]
    if len(looks) != len(tails):
        raise _error(pattern, "look-ahead only at the end of a top-level alternative")
    if len({look.atom for look in looks}) > 1 or len({look.negative for look in looks}) > 1:
        raise _error(pattern, "more than one kind of look-ahead")
    return looks[0] if looks else None


def _walk(node):
    yield node
    if isinstance(node, Repeat):
        yield from _walk(node.item)
    elif isinstance(node, (Sequence, Alternation)):
        for child in node.items if isinstance(node, Sequence) else node.branches:
            yield from _walk(child)


def _behaviour(component: dict) -> str:
    behaviour = component.get("behavior", "Isolated")
    if behaviour not in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                         "Contiguous"):
        raise UnsupportedComponentError(SECTION, "Split", f"behaviour {behaviour!r}")
    return behaviour


@dataclass
class RegexSplit:
    """A compiled `Split` pre-tokenizer (Regex or String pattern, any behaviour, invert)."""

    pattern: str
    groups: BlockTable
    representatives: np.ndarray
    sentinel_after: np.ndarray | None
    behaviour: str
    invert: bool
    # No per-code-point class for SplitPhase's packed table: the groups above replace it.
    classes = None

    @classmethod
    def from_component(cls, component: dict) -> RegexSplit:
        spec = component.get("pattern")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise UnsupportedComponentError(SECTION, "Split", f"pattern {spec!r}")
        (kind, source), = spec.items()
        if kind not in ("Regex", "String") or not isinstance(source, str):
            raise UnsupportedComponentError(SECTION, "Split", f"pattern {spec!r}")
        if not source:
            raise UnsupportedComponentError(SECTION, "Split", "empty pattern")
        if kind == "String":
            tree = Alternation([Sequence([Atom(_literal(c)) for c in source])])
        else:
            tree = PatternParser(source).parse()
        try:
            reference_tokenizer(pre_tokenizer=component)
        except Exception as error:
            raise _error(source, f"tokenizers rejects it: {error}") from None
        look = _look_ahead(tree, source)
        atoms = list(dict.fromkeys(_atoms(tree)))
        if len(atoms) > MAX_ATOMS:
            raise _error(source, f"more than {MAX_ATOMS} character sets")
        members = [_members(a) for a in atoms]
        _check_case_folding(tree, source)
        groups = _groups(members)
        count = int(groups.max()) + 1
        representatives = _representatives(count)
        first = np.unique(groups, return_index=True)[1]
        in_atom = {a: m[first] for a, m in zip(atoms, members, strict=True)}
        classes = {a: _re2_set(representatives[in_atom[a]]) for a in atoms}
        sentinel_after = None
        if look is not None:
            sentinel_after = in_atom[look.atom] != look.negative
        emitted = _Emitter(classes, look is not None).node(tree)
        _check_re2_compiles(emitted, source)
        return cls(
            emitted,
            BlockTable.from_dense(groups),
            representatives.astype(np.int32),
            sentinel_after,
            _behaviour(component),
            bool(component.get("invert", False)),
        )

    def apply(self, values, cls, starts, removed):
        """(code points, -, piece starts, removed flags) → (starts, removed) after the split."""
        kept_at = tf.where(~removed)
        chars = tf.gather_nd(values, kept_at)
        char_starts = tf.gather_nd(starts, kept_at)
        boundary, drop = self._split_kept(chars, char_starts)
        shape = tf.shape(starts, out_type=tf.int64)
        starts |= tf.scatter_nd(kept_at, boundary, shape)
        removed |= tf.scatter_nd(kept_at, drop, shape)
        return starts | previous(removed, False), removed

    def _split_kept(self, chars: tf.Tensor, starts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Boundaries and removals for the kept characters, grouped into pieces by `starts`."""
        size = tf.size(chars, out_type=tf.int64)
        splits = tf.concat([tf.where(starts)[:, 0], tf.reshape(size, [1])], 0)
        (group,) = self.groups.lookup(chars)
        encoded = tf.gather(self.representatives, group)
        if self.sentinel_after is not None:
            last_in_piece = following(starts, True)
            insert = following(tf.gather(self.sentinel_after, group), False) & ~last_in_piece
            source, within, splits = expand_values(1 + tf.cast(insert, tf.int32), splits)
            encoded = tf.where(within == 0, tf.gather(encoded, source), SENTINEL)
        pieces = tf.RaggedTensor.from_row_splits(encoded, splits, validate=False)
        text = tf.strings.unicode_encode(pieces, "UTF-8")
        marked = tf.strings.regex_replace(text, self.pattern, "\x01\\0\x02")
        decoded = tf.strings.unicode_decode(marked, "UTF-8")
        return self._segments_to_flags(decoded, size)

    def _segments_to_flags(self, decoded: tf.RaggedTensor, size: tf.Tensor):
        """Fold match/gap segments the way `tokenizers` applies a split behaviour.

        Each piece is an implicit gap segment followed by one segment per marker; empty gaps
        are dropped (the reference never produces them), empty matches are kept.
        """
        marks = decoded.values
        is_marker = (marks == MATCH_START) | (marks == MATCH_END)
        is_char = marks >= FIRST_REPRESENTATIVE
        markers_per_piece = tf.math.unsorted_segment_sum(
            tf.cast(is_marker, tf.int32), repeat_range(decoded.row_lengths()), decoded.nrows()
        )
        segment_piece = repeat_range(1 + markers_per_piece)
        element_piece = repeat_range(decoded.row_lengths())
        segment_of = tf.cumsum(tf.cast(is_marker, tf.int32)) + element_piece
        count = tf.size(segment_piece)
        is_match = tf.math.unsorted_segment_max(
            tf.cast(marks == MATCH_START, tf.int32), segment_of, count
        ) > 0
        length = tf.math.unsorted_segment_sum(tf.cast(is_char, tf.int32), segment_of, count)
        start = tf.cumsum(length, exclusive=True)
        kept = is_match | (length > 0)
        if self.invert:
            is_match = ~is_match
        opens = self._opens(select(is_match, kept), select(segment_piece, kept))
        boundary_at = select(select(start, kept), opens)
        boundary = tf.math.unsorted_segment_max(
            tf.ones_like(boundary_at), boundary_at, tf.cast(size, tf.int32) + 1
        )[:-1] > 0
        char_segment = select(segment_of, is_char)
        if self.behaviour != "Removed":
            return boundary, tf.zeros_like(boundary)
        return boundary, tf.gather(is_match, char_segment)

    def _opens(self, is_match: tf.Tensor, piece: tf.Tensor) -> tf.Tensor:
        """Whether each segment starts a new word (tokenizers' split-behaviour folds)."""
        has_previous = previous(piece, -1) == piece
        previous_match = previous(is_match, False) & has_previous
        if self.behaviour == "MergedWithPrevious":
            return ~(is_match & has_previous & ~previous_match)
        if self.behaviour == "MergedWithNext":
            return ~(~is_match & previous_match)
        if self.behaviour == "Contiguous":
            return ~(has_previous & (previous_match == is_match))
        return tf.ones_like(is_match)


@functools.cache
def _multi_char_folds() -> tuple[np.ndarray, set[str]]:
    """Code points whose case folding is several characters, and those foldings (ß → ss)."""
    chars = [c for c in map(chr, range(NUM_CODEPOINTS)) if not 0xD800 <= ord(c) < 0xE000
             and len(c.casefold()) > 1]
    flags = np.zeros(NUM_CODEPOINTS, bool)
    flags[[ord(c) for c in chars]] = True
    return flags, {c.casefold() for c in chars}


def _check_case_folding(tree, pattern: str) -> None:
    """Reject (?i) parts where Oniguruma matches across characters (ß ~ ss, ﬆ ~ st).

    Atoms are matched one character at a time, which is exact only without multi-character
    case folding. Oniguruma applies it to literals and to characters listed in bracket
    classes (not to \\w, \\p{..} or `.`): no such literal or class may hold a character that
    folds to several, and no run of case-insensitive literals may spell such a folding.
    """
    atoms = [a for a in _atoms(tree) if a.ignore_case and a.source.startswith(("[", "\\x{"))]
    if not atoms:
        return
    flags, foldings = _multi_char_folds()
    for atom in atoms:
        if np.any(_members(Atom(atom.source)) & flags):
            raise _error(pattern, f"(?i) {atom.source} has multi-character case foldings")
    for node in _walk(tree):
        if isinstance(node, Sequence):
            for run in _literal_runs(node.items):
                folded = "".join(chr(int(a.source[3:-1], 16)).casefold() for a in run)
                if any(f in folded for f in foldings):
                    raise _error(pattern, f"(?i) text {folded!r} matches a multi-character "
                                 "case folding")


def _literal_runs(items: list) -> list[list[Atom]]:
    """Maximal runs of consecutive case-insensitive literal atoms."""
    runs: list[list[Atom]] = [[]]
    for item in items:
        if isinstance(item, Atom) and item.ignore_case and item.source.startswith("\\x{"):
            runs[-1].append(item)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if len(run) > 1]


def _members(atom: Atom) -> np.ndarray:
    """Members of an atom; plain literals need no probe."""
    if atom.ignore_case or not atom.source.startswith("\\x{"):
        return atom_members(atom)
    members = np.zeros(NUM_CODEPOINTS, bool)
    members[int(atom.source[3:-1], 16)] = True
    return members
