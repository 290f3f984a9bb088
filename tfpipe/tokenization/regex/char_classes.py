"""Which code points each atom of a pattern matches, as the reference's Oniguruma sees it.

The second step of running a pattern in RE2 (see regex/__init__): the installed `tokenizers` is
asked which code points each atom matches (and, for `\\b`, which are word characters), and
code points that no atom tells apart are grouped, so no Unicode table or case folding is left
to RE2.
"""

from __future__ import annotations

import functools

import numpy as np

from tfpipe.tokenization.codepoint_tables import (
    NUM_CODEPOINTS,
    PROBE_CHUNK,
    all_codepoints,
    cached_arrays,
    codepoint_chars,
)
from tfpipe.tokenization.regex.parser import (
    Atom,
    PatternError,
    Sequence,
    pattern_error,
    tree_atoms,
    walk,
)

# Atoms are probed on a string of every code point; more than this many is a hostile pattern.
MAX_ATOMS = 256


def atom_members(atom: Atom) -> np.ndarray:
    """Which code points the reference's regex engine matches with `atom` (bool per code point).

    Probed on one string of every code point: a single-character atom matches each
    character on its own, so the characters it removes are exactly its members.
    """
    source = f"(?{atom.flags}:{atom.source})" if atom.flags else atom.source

    def compute() -> dict[str, np.ndarray]:
        members = np.zeros(NUM_CODEPOINTS, bool)
        members[all_codepoints()[_removed(source, codepoint_chars())]] = True
        return {"members": members}

    return cached_arrays({"regex-atom": source}, compute)["members"]


def word_members() -> np.ndarray:
    """The word characters of Oniguruma's `\\b` (bool per code point).

    Probed on every code point after a space (not a word character): `\\x{20}\\b` matches
    the space exactly when the code point after it is a word character.
    """

    def compute() -> dict[str, np.ndarray]:
        text = "".join(" " + c for c in codepoint_chars())
        members = np.zeros(NUM_CODEPOINTS, bool)
        members[all_codepoints()[_removed("\\x{20}\\b", text)[::2]]] = True
        return {"members": members}

    return cached_arrays({"regex-word-boundary": 1}, compute)["members"]


def _removed(source: str, text: str) -> np.ndarray:
    """Per character of `text`, whether a reference Split removing `source`'s matches drops it.

    Asked in runs of `PROBE_CHUNK` characters (an even number, so a probe of character pairs
    is never cut): on the whole million-character text the reference takes about 3x longer."""
    from tokenizers import Regex, pre_tokenizers

    try:
        splitter = pre_tokenizers.Split(Regex(source), "removed")
    except Exception as error:
        raise PatternError(f"{source!r}: {error}") from None
    kept = np.zeros(len(text) + 1, np.int32)
    for run in range(0, len(text), PROBE_CHUNK):
        for _, (begin, end) in splitter.pre_tokenize_str(text[run : run + PROBE_CHUNK]):
            kept[run + begin] += 1
            kept[run + end] -= 1
    return np.cumsum(kept)[:-1] == 0


def members_of(atom: Atom) -> np.ndarray:
    """Members of an atom; plain literals need no probe."""
    if atom.ignore_case or not atom.source.startswith("\\x{"):
        return atom_members(atom)
    members = np.zeros(NUM_CODEPOINTS, bool)
    members[int(atom.source[3:-1], 16)] = True
    return members


def group_ids(sets: list[np.ndarray]) -> np.ndarray:
    """Group id per code point: code points in exactly the same sets share a group."""
    signature = np.zeros((NUM_CODEPOINTS, (len(sets) + 63) // 64), np.uint64)
    for index, members in enumerate(sets):
        signature[:, index // 64] |= members.astype(np.uint64) << np.uint64(index % 64)
    _, groups = np.unique(signature, axis=0, return_inverse=True)
    return groups.reshape(-1).astype(np.int32)


@functools.cache
def _multi_char_folds() -> tuple[np.ndarray, set[str]]:
    """Code points whose case folding is several characters, and those foldings (ß → ss)."""
    chars = [c for c in map(chr, range(NUM_CODEPOINTS)) if not 0xD800 <= ord(c) < 0xE000
             and len(c.casefold()) > 1]
    flags = np.zeros(NUM_CODEPOINTS, bool)
    flags[[ord(c) for c in chars]] = True
    return flags, {c.casefold() for c in chars}


def check_case_folding(tree, pattern: str) -> None:
    """Reject (?i) parts where Oniguruma matches across characters (ß ~ ss, ﬆ ~ st).

    Atoms are matched one character at a time, which is exact only without multi-character
    case folding. Oniguruma applies it to literals and to characters listed in bracket
    classes (not to \\w, \\p{..} or `.`): no such literal or class may hold a character that
    folds to several, and no run of case-insensitive literals may spell such a folding.
    """
    atoms = [a for a in tree_atoms(tree) if a.ignore_case and a.source.startswith(("[", "\\x{"))]
    if not atoms:
        return
    flags, foldings = _multi_char_folds()
    for atom in atoms:
        if np.any(members_of(Atom(atom.source)) & flags):
            raise pattern_error(pattern, f"(?i) {atom.source} has multi-character case foldings")
    for node in walk(tree):
        if isinstance(node, Sequence):
            for run in _literal_runs(node.items):
                folded = "".join(chr(int(a.source[3:-1], 16)).casefold() for a in run)
                if any(f in folded for f in foldings):
                    raise pattern_error(
                        pattern, f"(?i) text {folded!r} matches a multi-character case folding"
                    )


def _literal_runs(items: list) -> list[list[Atom]]:
    """Maximal runs of consecutive case-insensitive literal atoms."""
    runs: list[list[Atom]] = [[]]
    for item in items:
        if isinstance(item, Atom) and item.ignore_case and item.source.startswith("\\x{"):
            runs[-1].append(item)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if len(run) > 1]
