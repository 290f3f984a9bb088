"""Oniguruma patterns in `Split` and `Replace` (issue 19): exact on every code point and text.

Each construct (escape, POSIX bracket, property or script, case-insensitive atom, class set
operation, assertion) is checked three ways: the compiled graph against the reference on one
text of every code point, Split and Replace patterns using it on generated and course texts,
and trained tokenizers whose normalizer or pre-tokenizer use them, end to end against the HF
fast tokenizer. Constructs with no exact core-op equivalent must be refused by name.
"""

from __future__ import annotations

import pytest
import tensorflow as tf
from parity import check_parity, check_parity_where_hf_accepts, shifted
from samples import sample, slow_among
from texts import SHARED_DIR, course_texts, generate_texts, hand_written_count
from tokenizers import Regex
from tokenizers import normalizers as hf_normalizers
from tokenizers import pre_tokenizers as hf_pre_tokenizers
from trained_tokenizers import train_boundary_split, train_whitespace_replace, trained_checkpoint

from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.codepoint_tables import all_codepoints
from tfpipe.tokenization.normalizers import Normalizer
from tfpipe.tokenization.pre_tokenizers import PreTokenizer

ESCAPES = [r"\s", r"\S", r"\d", r"\D", r"\w", r"\W", r"\h", r"\H"]
POSIX = [f"[[:{name}:]]" for name in ("alnum", "alpha", "ascii", "blank", "cntrl", "digit",
                                      "graph", "lower", "print", "punct", "space", "upper",
                                      "xdigit", "word")] + [r"[[:^space:]]", r"[^[:^alpha:]\d]"]
PROPERTIES = [r"\p{Han}", r"\p{Greek}", r"\p{Lu}", r"\P{L}", r"\p{^N}", r"\p{Hiragana}",
              r"\p{Arabic}", r"\p{Cyrillic}", r"\p{Latin}", r"\p{Common}", r"\p{Mn}",
              r"\p{Alnum}", r"\p{Cc}", r"\p{Zs}", r"[\p{Lo}\p{Nd}]"]
CASE_INSENSITIVE = [r"(?i)[a-z]", r"(?i:k)", r"(?i)\p{Lu}", r"(?i:[\x{3a3}\d])", r"(?i:é)"]
SET_OPERATIONS = [r"[a-z&&[^aeiou]]", r"[\p{L}&&\p{Greek}]", r"[\w&&[^\d]]", r"[^a-c&&b-d]"]
DOTS = [".", "(?m:.)", "(?m)."]
ATOMS = ESCAPES + POSIX + PROPERTIES + CASE_INSENSITIVE + SET_OPERATIONS + DOTS
DEFAULT_ATOMS = [r"\s", r"[[:^alpha:]]", r"\p{Greek}", r"(?i:k)", r"[a-z&&[^aeiou]]"]
# Zero-width assertions, each text of the every-code-point check is a code point between two
# spaces (for \b, \B) or followed by a newline (for ^, $).
ASSERTIONS = [r"\b", r"\B", r"$", r"\A", r"\z", r"^."]
DEFAULT_ASSERTIONS = [r"\b"]

# Patterns using each construct, for Split and Replace on generated and course texts.
PATTERNS = [
    r"\s+",
    r"\b\w+\b",
    r"\B.",
    r"(?i)\bthe\b|\h{2,}",
    r"[[:punct:]&&[^.]]+|[[:upper:]][[:lower:]]*",
    r"\p{Han}+|\p{Hiragana}+|\p{Katakana}+",
    r"\P{L}{2,}|\p{^N}\p{N}",
    r"^\s+|\s+$",
    r"\A\W+|\W+\z",
    r"a(?i)b|c|(?-i:D)",
    r"(?<word>[\p{Greek}\p{Cyrillic}]+)(?#comment)",
    r"(?m:.)\n|\d+",
    r"\s+(?!\S)|\s+",
]
DEFAULT_PATTERNS = [r"\s+", r"\b\w+\b", r"^\s+|\s+$", r"a(?i)b|c|(?-i:D)"]

REFUSED = {
    r"(a)\1": "back-reference",
    r"(?<name>a)\k<name>": "back-reference",
    r"(?<=a)b": "look-behind",
    r"(?<!a)b": "look-behind",
    r"(?>a+)": "atomic group",
    r"a++": "possessive",
    r"\Gx": "\\G",
    r"a\Z": "\\Z",
    r"\X": "grapheme",
    r"\R": "line break",
    r"\Kx": "keep",
    r"(?x) a": "extended mode",
    r"(?~ab)": "absent operator",
    r"(a)\g<1>": "subexpression call",
    r"a(?=b)+": "target of repeat operator is invalid",
    r"\b*": "target of repeat operator is invalid",
    r"^": "'^' not followed by a character",
    r"\bx\s+(?!\S)": "together with a look-ahead",
    r"\s+(?!\S)|x*": "can match empty",
    r"(?i)ß": "case folding",
}


def text_of_every_code_point() -> str:
    return "".join(map(chr, all_codepoints().tolist()))


def assertion_text(pattern: str) -> str:
    """Every code point between spaces (word boundaries) or before a newline (line anchors)."""
    joiner = "\n" if pattern in ("$", "^.") else " "
    return joiner.join(text_of_every_code_point())


def normalized_by_graph(component: dict, texts: list[str]) -> list[str]:
    ours = Normalizer(component)
    cps = tf.strings.unicode_decode(tf.constant(texts), "UTF-8")
    out = tf.strings.unicode_encode(ours(cps), "UTF-8").numpy()
    return [o.decode() for o in out]


def replace(pattern: str, content: str) -> dict:
    return {"type": "Replace", "pattern": {"Regex": pattern}, "content": content}


def split(pattern: str, behaviour: str = "Isolated") -> dict:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": behaviour,
            "invert": False}


@pytest.mark.parametrize("atom", slow_among(ATOMS, [a for a in ATOMS if a not in DEFAULT_ATOMS]))
def test_atom_matches_the_reference_on_every_code_point(atom):
    """The graph removes exactly the code points Oniguruma matches (and nothing else)."""
    text = text_of_every_code_point()
    want = hf_normalizers.Replace(Regex(atom), "").normalize_str(text)
    assert normalized_by_graph(replace(atom, ""), [text]) == [want]


@pytest.mark.parametrize(
    "pattern", slow_among(ASSERTIONS, [a for a in ASSERTIONS if a not in DEFAULT_ASSERTIONS])
)
def test_assertion_matches_the_reference_at_every_code_point(pattern):
    text = assertion_text(pattern)
    want = hf_normalizers.Replace(Regex(pattern), "|").normalize_str(text)
    got = normalized_by_graph(replace(pattern, "|"), [text])[0]
    assert got == want


@pytest.fixture(scope="module")
def pattern_texts() -> list[str]:
    """Generated texts (edge cases first) and course lines, with anchor and boundary cases."""
    texts = sample(generate_texts(3000, seed=19), 1000, keep_first=hand_written_count())
    texts += ["", " ", "\n", "a\n", "\nb\n", "ab\n\ncd ", " x\ty\u3000", "αβγ δ", "The thé"]
    if (SHARED_DIR / "corpus" / "course.jsonl").is_file():
        texts += sample(course_texts(SHARED_DIR), 500)
    return texts


@pytest.mark.parametrize("pattern", slow_among(PATTERNS, [p for p in PATTERNS
                                                          if p not in DEFAULT_PATTERNS]))
def test_replace_pattern_matches_the_reference(pattern, pattern_texts):
    component = replace(pattern, "<$1>")
    expected = hf_normalizers.Replace(Regex(pattern), "<$1>")
    got = normalized_by_graph(component, pattern_texts)
    wrong = [(t, g) for t, g in zip(pattern_texts, got, strict=True)
             if expected.normalize_str(t) != g]
    assert not wrong, f"{len(wrong)} mismatches, first: {wrong[:3]!r}"


@pytest.mark.parametrize("pattern", slow_among(PATTERNS, [p for p in PATTERNS
                                                          if p not in DEFAULT_PATTERNS]))
def test_split_pattern_matches_the_reference(pattern, pattern_texts):
    behaviour = "Removed" if "\\b" in pattern else "Isolated"
    ours = PreTokenizer(split(pattern, behaviour))
    words, piece = ours(tf.strings.unicode_decode(tf.constant(pattern_texts), "UTF-8"))
    rows = tf.RaggedTensor.from_value_rowids(
        tf.strings.unicode_encode(words, "UTF-8"), tf.cast(piece, tf.int64),
        nrows=len(pattern_texts),
    ).to_list()
    expected = hf_pre_tokenizers.Split(Regex(pattern), behaviour.lower())
    wrong = [(t, g) for t, g in zip(pattern_texts, rows, strict=True)
             if [w for w, _ in expected.pre_tokenize_str(t)] != [w.decode() for w in g]]
    assert not wrong, f"{len(wrong)} mismatches, first: {wrong[:3]!r}"


@pytest.mark.parametrize("pattern", list(REFUSED))
def test_constructs_without_an_exact_equivalent_are_refused_by_name(pattern):
    with pytest.raises(UnsupportedComponentError, match="normalizer component 'Replace'") as error:
        Normalizer(replace(pattern, " "))
    assert REFUSED[pattern] in str(error.value)
    with pytest.raises(UnsupportedComponentError, match="pre_tokenizer component 'Split'"):
        PreTokenizer(split(pattern))


@pytest.fixture(scope="module")
def training_texts() -> list[str]:
    return generate_texts(3000, seed=190)


def trained_parity(folder, tokenizer_layer, hf_tokenizer, texts: list[str]) -> None:
    """Singles and pairs, every truncation mode, against the HF fast tokenizer."""
    hf = hf_tokenizer(folder)
    check_parity(tokenizer_layer(folder), hf, texts, padding="longest", truncation=True)
    pairs = shifted(texts, 7)
    for mode in ("longest_first", "only_first", "only_second"):
        layer = tokenizer_layer(folder, truncation=mode, max_length=24)
        check_parity_where_hf_accepts(layer, hf, texts, pairs, refusals=None, padding="longest",
                                      truncation=mode, max_length=24)


def corpus_and_generated(texts: list[str]) -> list[str]:
    out = sample(texts, 600, keep_first=hand_written_count())
    if (SHARED_DIR / "corpus" / "course.jsonl").is_file():
        out += sample(course_texts(SHARED_DIR), 1500)
    return out


def test_whitespace_replace_tokenizer_matches_hf(training_texts, tokenizer_layer, hf_tokenizer):
    folder = trained_checkpoint("issue19 whitespace replace",
                                lambda: train_whitespace_replace(training_texts), __file__)
    texts = corpus_and_generated(generate_texts(2000, seed=91))
    trained_parity(folder, tokenizer_layer, hf_tokenizer, texts)


@pytest.mark.slow
def test_boundary_split_tokenizer_matches_hf(training_texts, tokenizer_layer, hf_tokenizer):
    folder = trained_checkpoint("issue19 boundary split",
                                lambda: train_boundary_split(training_texts), __file__)
    texts = corpus_and_generated(generate_texts(2000, seed=92))
    trained_parity(folder, tokenizer_layer, hf_tokenizer, texts)
