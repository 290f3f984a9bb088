"""The Oniguruma (Ruby syntax) patterns of tokenizer.json, parsed into single-character atoms.

The first step of running a `Split` pattern in RE2 (see regex/__init__): the pattern becomes a
tree of atoms (`\\p{L}`, `[^\\s\\p{L}]`, `(?i:s)`, `.`, literals) combined by sequence,
alternation, groups and repetition, with look-aheads kept as nodes of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS
from tfpipe.tokenization.errors import UnsupportedComponentError

SECTION = "pre_tokenizer"
MAX_PATTERN_LENGTH = 10_000

SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "e": "\x1b"}
CLASS_ESCAPES = set("sSdDwWhH")
QUANTIFIERS = "*+?{"


def pattern_error(pattern: str, reason: str) -> UnsupportedComponentError:
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
            raise pattern_error(pattern[:50] + "…", f"longer than {MAX_PATTERN_LENGTH} characters")
        self.pattern = pattern
        self.pos = 0

    def parse(self) -> Alternation:
        tree = self._alternation(ignore_case=False, depth=0)
        if self.pos != len(self.pattern):
            raise pattern_error(self.pattern, f"unbalanced ')' at {self.pos}")
        return tree

    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.pattern[index] if index < len(self.pattern) else ""

    def _alternation(self, ignore_case: bool, depth: int) -> Alternation:
        if depth > 50:
            raise pattern_error(self.pattern, "groups nested deeper than 50")
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
            raise pattern_error(self.pattern, f"anchor {char!r}")
        if char in QUANTIFIERS and not (char == "{" and not self._is_bound()):
            raise pattern_error(self.pattern, f"nothing to repeat at {self.pos}")
        self.pos += 1
        return Atom(char if char == "." else literal(char), ignore_case)

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
                raise pattern_error(self.pattern, f"group syntax at {start}")
        inner = self._alternation(ignore_case, depth + 1)
        if self._peek() != ")":
            raise pattern_error(self.pattern, f"unclosed group at {start}")
        self.pos += 1
        if look_ahead is None:
            return inner
        atom = _single_atom(inner)
        if atom is None:
            raise pattern_error(self.pattern, "look-ahead of more than one character")
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
            raise pattern_error(self.pattern, "repeated look-ahead")
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
            raise pattern_error(self.pattern, f"repetition bounds {{{low},{high}}}")
        lazy = self._peek() == "?"
        if self._peek() == "+":
            raise pattern_error(self.pattern, "possessive repetition")
        self.pos += lazy
        if self._peek() in "*+?" and self._peek():
            raise pattern_error(self.pattern, f"nested quantifier at {self.pos}")
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
                raise pattern_error(self.pattern, f"unclosed '[' at {start}")
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
            raise pattern_error(self.pattern, "trailing backslash")
        self.pos += 2
        if letter in "pP" and self._peek() == "{":
            end = self.pattern.find("}", self.pos)
            if end < 0:
                raise pattern_error(self.pattern, f"unclosed \\{letter}{{ at {start}")
            self.pos = end + 1
            return self.pattern[start : self.pos]
        if letter in CLASS_ESCAPES:
            return self.pattern[start : self.pos]
        if letter in SIMPLE_ESCAPES:
            return literal(SIMPLE_ESCAPES[letter])
        if letter == "x":
            return literal(chr(self._hex_digits(2, braces=True)))
        if letter == "u":
            return literal(chr(self._hex_digits(4, braces=False)))
        if letter.isalnum():
            raise pattern_error(self.pattern, f"escape \\{letter}")
        return literal(letter)

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
            raise pattern_error(self.pattern, f"hex escape {digits!r}") from None
        if not 0 <= value < NUM_CODEPOINTS or 0xD800 <= value < 0xE000:
            raise pattern_error(self.pattern, f"code point {value:#x}")
        return value


def literal(char: str) -> str:
    """Oniguruma source matching exactly `char`."""
    return f"\\x{{{ord(char):x}}}"


def _single_atom(tree: Alternation) -> Atom | None:
    if len(tree.branches) == 1 and len(tree.branches[0].items) == 1:
        item = tree.branches[0].items[0]
        if isinstance(item, Atom):
            return item
    return None


def tree_atoms(node) -> list[Atom]:
    if isinstance(node, Atom):
        return [node]
    if isinstance(node, LookAhead):
        return [node.atom]
    if isinstance(node, Repeat):
        return tree_atoms(node.item)
    children = node.branches if isinstance(node, Alternation) else node.items
    return [atom for child in children for atom in tree_atoms(child)]


def walk(node):
    yield node
    if isinstance(node, Repeat):
        yield from walk(node.item)
    elif isinstance(node, (Sequence, Alternation)):
        for child in node.items if isinstance(node, Sequence) else node.branches:
            yield from walk(child)
