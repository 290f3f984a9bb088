"""The Oniguruma (Ruby syntax) patterns of tokenizer.json, parsed into single-character atoms.

The first step of running a pattern in RE2 (see regex/__init__): the pattern becomes a tree of
atoms (`\\p{L}`, `[[:alpha:]&&[^a]]`, `(?i:s)`, `.`, literals) combined by sequence,
alternation, groups and repetition, with look-aheads and zero-width assertions (`\\b`, `^`)
kept as nodes of their own. Flags follow Oniguruma: `a(?i)b|c` is `a(?i:b|c)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfpipe.tokenization.codepoint_tables import NUM_CODEPOINTS

MAX_PATTERN_LENGTH = 10_000

SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "e": "\x1b"}
CLASS_ESCAPES = set("sSdDwWhH")
ASSERTION_ESCAPES = set("bBAz")
# Escapes with no exact core-op equivalent, named in the refusal.
REFUSED_ESCAPES = {
    "k": "back-reference \\k<..>", "g": "subexpression call \\g<..>", "K": "keep \\K",
    "G": "search-start anchor \\G", "Z": "anchor \\Z (end or before a final newline)",
    "X": "extended grapheme cluster \\X", "R": "line break \\R", "y": "text-segment boundary \\y",
    "Y": "text-segment boundary \\Y", "0": "octal escape \\0",
}
REFUSED_GROUPS = {
    "?<=": "look-behind (?<=..)", "?<!": "look-behind (?<!..)", "?>": "atomic group (?>..)",
    "?~": "absent operator (?~..)", "?(": "conditional group (?(..)..)",
}
QUANTIFIERS = "*+?{"


class PatternError(ValueError):
    """A pattern outside what runs exactly in RE2; the caller names its component."""


def pattern_error(pattern: str, reason: str) -> PatternError:
    return PatternError(f"pattern {pattern!r}: {reason}")


@dataclass(frozen=True)
class Atom:
    """One character from a set: Oniguruma source and the flags ("i", "m") that apply to it."""

    source: str
    flags: str = ""

    @property
    def ignore_case(self) -> bool:
        return "i" in self.flags


@dataclass(frozen=True)
class LookAhead:
    atom: Atom
    negative: bool


@dataclass(frozen=True)
class Assertion:
    """A zero-width test: `\\b`, `\\B`, `^`, `$`, `\\A` or `\\z`."""

    kind: str


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
    """Parses the Oniguruma (Ruby syntax) subset that runs exactly in RE2.

    Anything outside it — back-references, look-behind, atomic groups, possessive repetition,
    look-ahead anywhere but at the end of a top-level branch — is a PatternError naming the
    construct, never a silently different match.
    """

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise pattern_error(pattern[:50] + "…", f"longer than {MAX_PATTERN_LENGTH} characters")
        self.pattern = pattern
        self.pos = 0

    def parse(self) -> Alternation:
        tree = self._alternation(flags="", depth=0)
        if self.pos != len(self.pattern):
            raise pattern_error(self.pattern, f"unbalanced ')' at {self.pos}")
        # A leading `(?i)` wraps the whole pattern: its alternatives are the top-level ones.
        while len(tree.branches) == 1 and [type(i) for i in tree.branches[0].items] == [
            Alternation
        ]:
            tree = tree.branches[0].items[0]
        return tree

    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.pattern[index] if index < len(self.pattern) else ""

    def _alternation(self, flags: str, depth: int) -> Alternation:
        if depth > 50:
            raise pattern_error(self.pattern, "groups nested deeper than 50")
        branches = [Sequence()]
        while self.pos < len(self.pattern) and self._peek() != ")":
            if self._peek() == "|":
                self.pos += 1
                branches.append(Sequence())
                continue
            if self.pattern.startswith("(?#", self.pos):
                self._comment()
                continue
            isolated = self._isolated_flags(flags)
            if isolated is not None:
                # Oniguruma: `(?i)` covers the rest of the group, later alternatives included.
                branches[-1].items.append(self._alternation(isolated, depth + 1))
                break
            item = self._item(flags, depth)
            branches[-1].items.append(self._quantified(item))
        return Alternation(branches)

    def _comment(self) -> None:
        end = self.pattern.find(")", self.pos)
        if end < 0:
            raise pattern_error(self.pattern, f"unclosed comment at {self.pos}")
        self.pos = end + 1

    def _isolated_flags(self, flags: str) -> str | None:
        """The flags after an isolated option group `(?i)`/`(?-i)`/`(?im-x)` here, if any."""
        if not self.pattern.startswith("(?", self.pos):
            return None
        end = self.pos + 2
        while end < len(self.pattern) and self.pattern[end] in "imx-":
            end += 1
        if end == self.pos + 2 or self.pattern[end : end + 1] != ")":
            return None
        new = self._apply_flags(flags, self.pattern[self.pos + 2 : end])
        self.pos = end + 1
        return new

    def _apply_flags(self, flags: str, spec: str) -> str:
        on, _, off = spec.partition("-")
        if "x" in on:
            raise pattern_error(self.pattern, "extended mode (?x)")
        return "".join(f for f in "im" if (f in flags or f in on) and f not in off)

    def _item(self, flags: str, depth: int):
        char = self._peek()
        if char == "(":
            return self._group(flags, depth)
        if char == "[":
            return Atom(self._bracket(), flags)
        if char == "\\":
            return self._escape(flags)
        if char in "^$":
            self.pos += 1
            return Assertion(char)
        if char in QUANTIFIERS and not (char == "{" and not self._is_bound()):
            raise pattern_error(self.pattern, f"nothing to repeat at {self.pos}")
        self.pos += 1
        return Atom(char if char == "." else literal(char), flags)

    def _group(self, flags: str, depth: int):
        start = self.pos
        self.pos += 1
        look_ahead = None
        if self._peek() == "?":
            look_ahead, flags = self._group_head(start, flags)
        inner = self._alternation(flags, depth + 1)
        if self._peek() != ")":
            raise pattern_error(self.pattern, f"unclosed group at {start}")
        self.pos += 1
        if look_ahead is None:
            return inner
        atom = _single_atom(inner)
        if atom is None:
            raise pattern_error(self.pattern, "look-ahead of anything but one character")
        return LookAhead(atom, look_ahead)

    def _group_head(self, start: int, flags: str) -> tuple[bool | None, str]:
        """Consume `?...` after '(': (negative look-ahead or None, the group's flags)."""
        rest = self.pattern[self.pos :]
        for head, construct in REFUSED_GROUPS.items():
            if rest.startswith(head):
                raise pattern_error(self.pattern, construct)
        if rest.startswith(("?=", "?!")):
            self.pos += 2
            return rest[1] == "!", flags
        if rest.startswith("?:"):
            self.pos += 2
            return None, flags
        if rest.startswith(("?<", "?'")):
            close = ">" if rest[1] == "<" else "'"
            end = rest.find(close, 2)
            if end > 2 and rest[2:end].replace("_", "a").isalnum():
                self.pos += end + 1
                return None, flags
        end = 1
        while end < len(rest) and rest[end] in "imx-":
            end += 1
        if end > 1 and rest[end : end + 1] == ":":
            self.pos += end + 1
            return None, self._apply_flags(flags, rest[1:end])
        raise pattern_error(self.pattern, f"group syntax at {start}")

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
        if isinstance(item, (LookAhead, Assertion)):
            raise pattern_error(self.pattern, "repeated look-ahead or anchor")
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
        """The source of a bracket class: nested classes, POSIX brackets, `&&` and escapes
        included (the reference tells its members, see char_classes)."""
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

    def _escape(self, flags: str):
        """One escape: a single-character atom or an assertion."""
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
            return Atom(self.pattern[start : self.pos], flags)
        if letter in CLASS_ESCAPES:
            return Atom(self.pattern[start : self.pos], flags)
        if letter in ASSERTION_ESCAPES:
            return Assertion("\\" + letter)
        if letter in SIMPLE_ESCAPES:
            return Atom(literal(SIMPLE_ESCAPES[letter]), flags)
        if letter == "x":
            return Atom(literal(chr(self._hex_digits(2, braces=True))), flags)
        if letter == "u":
            return Atom(literal(chr(self._hex_digits(4, braces=False))), flags)
        if letter in "123456789":
            raise pattern_error(self.pattern, f"back-reference \\{letter}")
        if letter in REFUSED_ESCAPES:
            raise pattern_error(self.pattern, REFUSED_ESCAPES[letter])
        if letter.isalnum():
            raise pattern_error(self.pattern, f"escape \\{letter}")
        return Atom(literal(letter), flags)

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


def literal_tree(text: str) -> Alternation:
    """The tree of a `String` pattern: its characters in sequence."""
    return Alternation([Sequence([Atom(literal(c)) for c in text])])


def _single_atom(tree: Alternation) -> Atom | None:
    if len(tree.branches) == 1 and len(tree.branches[0].items) == 1:
        item = tree.branches[0].items[0]
        if isinstance(item, Atom):
            return item
    return None


def can_match_empty(node) -> bool:
    """Whether `node` can match without consuming a character."""
    if isinstance(node, Atom):
        return False
    if isinstance(node, (LookAhead, Assertion)):
        return True
    if isinstance(node, Repeat):
        return node.low == 0 or can_match_empty(node.item)
    if isinstance(node, Sequence):
        return all(can_match_empty(item) for item in node.items)
    return any(can_match_empty(branch) for branch in node.branches)


def tree_atoms(node) -> list[Atom]:
    if isinstance(node, Atom):
        return [node]
    if isinstance(node, LookAhead):
        return [node.atom]
    if isinstance(node, Assertion):
        return []
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
