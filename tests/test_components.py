"""Component-level parity: each compiled normalizer and pre-tokenizer against its reference.

A mismatch here names the component at fault, which whole-tokenizer parity tests cannot.
"""

from __future__ import annotations

import json
import random

import pytest
import tensorflow as tf
from samples import FULL, sample
from texts import SHARED_DIR, course_texts
from trained_tokenizers import CL100K, GPT2_SPLIT

from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.normalizers import Normalizer
from tfpipe.tokenization.pipeline import TokenizationPipeline
from tfpipe.tokenization.pre_tokenizers import PreTokenizer
from tfpipe.tokenization.reference import reference_tokenizer

# BertNormalizer options: every value of each option is in one of these (clean_text,
# handle_chinese_chars, strip_accents, lowercase); the other combinations run in a full run.
BERT_NORMALIZER_DEFAULTS = [(True, True, None, True), (True, True, None, False),
                            (False, False, True, False), (True, False, False, True)]

NORMALIZERS = [
    {"type": "NFC"},
    {"type": "NFD"},
    {"type": "NFKC"},
    {"type": "NFKD"},
    {"type": "Lowercase"},
    {"type": "StripAccents"},
    {"type": "Nmt"},
    {"type": "ByteLevel"},
    {"type": "Strip", "strip_left": True, "strip_right": True},
    {"type": "Strip", "strip_left": False, "strip_right": True},
    {"type": "Replace", "pattern": {"String": "\u00df"}, "content": "ss"},
    {"type": "Replace", "pattern": {"String": "``"}, "content": "\""},
    {"type": "Replace", "pattern": {"String": "a\u0301 "}, "content": "\\1\\"},
    {
        "type": "Sequence",
        "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}],
    },
    *(
        pytest.param(
            {
                "type": "BertNormalizer",
                "clean_text": clean,
                "handle_chinese_chars": chinese,
                "strip_accents": strip,
                "lowercase": lower,
            },
            marks=() if (clean, chinese, strip, lower) in BERT_NORMALIZER_DEFAULTS
            else pytest.mark.slow,
        )
        for clean in (True, False)
        for chinese in (True, False)
        for strip in (None, True, False)
        for lower in (True, False)
    ),
]


def split(pattern: str, behaviour: str = "Isolated", invert: bool = False, kind: str = "Regex"):
    return {"type": "Split", "pattern": {kind: pattern}, "behavior": behaviour, "invert": invert}


def byte_level(add_prefix_space: bool, use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
            "use_regex": use_regex}


def metaspace(prepend_scheme: str, split: bool) -> dict:
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": prepend_scheme,
            "split": split}


PRE_TOKENIZERS = [
    {"type": "BertPreTokenizer"},
    {"type": "Whitespace"},
    {"type": "WhitespaceSplit"},
    *({"type": "Punctuation", "behavior": b} for b in
      ("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous")),
    {"type": "Digits", "individual_digits": True},
    {"type": "Digits", "individual_digits": False},
    {"type": "CharDelimiterSplit", "delimiter": " "},
    {"type": "FixedLength", "length": 3},
    {"type": "UnicodeScripts"},
    {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Punctuation", "behavior": "Isolated"},
            {"type": "Digits", "individual_digits": True},
        ],
    },
    # ByteLevel anywhere in a Sequence (full run; test_bpe_parity runs falcon's by default):
    # falcon-7b's, a prefix space in the middle, two ByteLevels, and ByteLevel with Metaspace
    # either way (`first` reads offset 0 through the byte-level alphabet).
    *(pytest.param({"type": "Sequence", "pretokenizers": sequence}, marks=pytest.mark.slow)
      for sequence in (
          [{"type": "Punctuation", "behavior": "Contiguous"}, byte_level(False, True),
           {"type": "Digits", "individual_digits": False},
           split("[0-9][0-9][0-9]")],
          [{"type": "Punctuation", "behavior": "Isolated"}, byte_level(True, True),
           {"type": "Digits", "individual_digits": True}],
          [byte_level(False, False), byte_level(True, True)],
          [byte_level(False, False), {"type": "Digits", "individual_digits": True},
           metaspace("first", True)],
          [{"type": "WhitespaceSplit"}, metaspace("first", False), byte_level(True, True),
           metaspace("always", True)],
      )),
    # Metaspace's split runs in the phase before it once no space is left (WhitespaceSplit,
    # Whitespace); after Punctuation, or without its split, it keeps its own phase.
    {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace("always", True)]},
    *(pytest.param({"type": "Sequence", "pretokenizers": sequence}, marks=pytest.mark.slow)
      for sequence in (
          [{"type": "Whitespace"}, metaspace("first", True)],
          [{"type": "WhitespaceSplit"}, metaspace("never", True)],
          [{"type": "WhitespaceSplit"}, metaspace("always", False)],
          [{"type": "Punctuation", "behavior": "Isolated"}, metaspace("always", True)],
      )),
    {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "CharDelimiterSplit", "delimiter": "\u3000"},
            {"type": "Punctuation", "behavior": "Removed"},
            {"type": "UnicodeScripts"},
            {"type": "FixedLength", "length": 2},
        ],
    },
]


SPLITS = [
    split(GPT2_SPLIT),
    split(CL100K),
    split(CL100K, "Removed", invert=True),
    split(r"\s+(?=\S)", "MergedWithNext"),
    split(r" ?[^(\s|[.,!?…。，、।۔،])]+"),
    split(r"(?i)[a-z]+|\w+?x|\x{3000}|\u00a0|\.{2,}"),
    # Empty matches under each behaviour, each inverted or not; the default run takes one
    # of the two per behaviour (each Split build costs seconds).
    *(pytest.param(split(r"a*", behaviour, invert),
                   marks=() if invert == (rank % 2 == 1) else pytest.mark.slow)
      for rank, behaviour in enumerate(
          ("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"))
      for invert in (False, True)),
    split(" ", "Removed", kind="String"),
    split("ab", "MergedWithPrevious", kind="String"),
    {"type": "Sequence", "pretokenizers": [
        split(r"\p{N}{1,3}"), {"type": "WhitespaceSplit"}, split(r"[.,]", "Contiguous")]},
]
# A dense alphabet of what the look-ahead rewrite must get right: whitespace runs before
# letters, digits, symbols, newlines and the end of the text.
WHITESPACE_DENSE = " \t\n\r\u3000\xa0a1!'sSLlX.ab"
# Metaspace's replacement inside, before and after words and spaces.
REPLACEMENT_DENSE = " \u2581\u2581a b,\t"


def reference(section: str, component: dict):
    """The reference ``tokenizers`` component for a tokenizer.json section."""
    return getattr(reference_tokenizer(**{section: component}), section)


EDGE_TEXTS = [
    "",
    " ",
    "``quoted'' ```code``` a\u0301 b a\u0301",
    "  leading and trailing \u3000\u00a0",
    "e\u0323\u0302 e\u0302\u0323 \u1100\u1161\u11a8 \u0b47\u0b3e \u0345\u0301",
    "Stra\u00dfe \u0130stanbul \u03a3\u0391\u03a3 \u1e9e \ufb01 \u2460 \uff21",
    "a,b.c!d?e-f_g(h)[i]{j}\"k'l 1234 \u0661\u0662 \u00bd",
]


def random_text(rng: random.Random) -> str:
    """Text dense in the hard cases: marks, Hangul jamo, controls, spaces, any plane."""
    ranges = [
        (0x300, 0x36F), (0x0, 0x7F), (0x80, 0x2FFF), (0x1100, 0x11FF), (0xAC00, 0xD7A3),
        (0x2000, 0x206F), (0x3000, 0x9FFF), (0x1F300, 0x1FAFF), (0x0, 0x10FFFF),
    ]
    chars = []
    for _ in range(rng.randint(0, 24)):
        low, high = rng.choice(ranges)
        cp = rng.randint(low, high)
        chars.append(chr(cp) if not 0xD800 <= cp < 0xE000 else " ")
    return "".join(chars)


@pytest.fixture(scope="module")
def component_texts() -> list[str]:
    """Random texts dense in hard cases, whitespace runs, Metaspace's replacement and (when
    shared data is there) course texts: 10,600 in a full run, 3,200 by default."""
    rng = random.Random(20261125)
    texts = [random_text(rng) for _ in range(4000 if FULL else 1200)] + EDGE_TEXTS
    texts += ["".join(rng.choices(WHITESPACE_DENSE, k=rng.randint(0, 20)))
              for _ in range(2000 if FULL else 600)]
    texts += ["".join(rng.choices(REPLACEMENT_DENSE, k=rng.randint(0, 12)))
              for _ in range(600 if FULL else 200)]
    if (SHARED_DIR / "corpus" / "course.jsonl").is_file():
        texts += sample(course_texts(SHARED_DIR)[::6], 1200)
    return texts


def batches(texts: list[str], size: int = 4096):
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def compiled_normalizer(component: dict):
    """The compiled normalizer as a function: [batch] strings → normalized strings."""
    ours = Normalizer(component)
    return tf.function(
        lambda x: tf.strings.unicode_encode(ours(tf.strings.unicode_decode(x, "UTF-8")), "UTF-8"),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )


def assert_normalized_as_reference(component: dict, texts: list[str], got: list[bytes]):
    expected = reference("normalizer", component)
    pairs = zip(texts, [g.decode() for g in got], strict=True)
    wrong = [(t, want, g) for t, g in pairs if (want := expected.normalize_str(t)) != g]
    assert not wrong, f"{len(wrong)} mismatches, first: {wrong[:3]!r}"


@pytest.mark.parametrize("component", NORMALIZERS, ids=lambda c: json.dumps(c, ensure_ascii=True))
def test_normalizer_matches_reference(component, component_texts):
    run = compiled_normalizer(component)
    got = [o for b in batches(component_texts) for o in run(tf.constant(b)).numpy()]
    assert_normalized_as_reference(component, component_texts, got)


@pytest.mark.parametrize("component", NORMALIZERS, ids=lambda c: json.dumps(c, ensure_ascii=True))
def test_normalizer_matches_reference_text_by_text(component, component_texts):
    """One text per call: batches of usual text take the shortcuts (a map of single code
    points, a run of local stages as one lookup) that large mixed batches never reach."""
    run = compiled_normalizer(component)
    texts = component_texts[::15]
    got = [run(tf.constant([text])).numpy()[0] for text in texts]
    assert_normalized_as_reference(component, texts, got)


# Marks NFD reorders: most are deleted by an accent filter after it, U+08D4 and U+1B44
# survive BertNormalizer's (so a batch holding them runs its stages one by one).
REORDERED_MARKS = [
    "Vie\u0323\u0302t \u00e9\u0301 \u4e2d\u6587 MIXED \u0130",
    "a\u0301\u08d4\u0323 \u1b44\u0301 e\u0302\u0323",
    "\u0301\u0323 \u1100\u1161\u11a8",
]
RUN_NORMALIZERS = [
    {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
     "strip_accents": None, "lowercase": True},
    {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": False,
     "strip_accents": True, "lowercase": False},
    {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]},
    {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Lowercase"}]},
]


@pytest.mark.parametrize("component", RUN_NORMALIZERS, ids=lambda c: json.dumps(c))
def test_local_run_shortcut_matches_reference(component):
    """Batches with and without a surviving reordered mark: the fused map and the stages."""
    run = compiled_normalizer(component)
    for batch in ([REORDERED_MARKS[0]], [REORDERED_MARKS[2]], REORDERED_MARKS):
        got = run(tf.constant(batch)).numpy()
        assert_normalized_as_reference(component, batch, list(got))


@pytest.mark.parametrize("component", PRE_TOKENIZERS + SPLITS, ids=lambda c: json.dumps(c))
def test_pre_tokenizer_matches_reference(component, component_texts):
    ours = PreTokenizer(component)

    @tf.function
    def run(texts):
        # Each text is one piece whose first code point is at offset 0.
        anchored = tf.ones_like(texts, tf.int32) if ours.needs_anchor else None
        words, piece = ours(tf.strings.unicode_decode(texts, "UTF-8"), anchored)
        strings = tf.strings.unicode_encode(words, "UTF-8")
        return tf.RaggedTensor.from_value_rowids(
            strings, tf.cast(piece, tf.int64), nrows=tf.size(texts, out_type=tf.int64)
        )

    expected = reference("pre_tokenizer", component)
    got = [
        [w.decode() for w in row]
        for batch in batches(component_texts)
        for row in run(tf.constant(batch)).to_list()
    ]
    wrong = [
        (t, g)
        for t, g in zip(component_texts, got, strict=True)
        if [w for w, _ in expected.pre_tokenize_str(t)] != g
    ]
    assert not wrong, f"{len(wrong)} mismatches, first: {wrong[:3]!r}"


@pytest.mark.parametrize(("first", "phases"), [
    ({"type": "WhitespaceSplit"}, ["SplitPhase", "Metaspace"]),
    ({"type": "Whitespace"}, ["SplitPhase", "Metaspace"]),
    ({"type": "Punctuation"}, ["SplitPhase", "Metaspace", "SplitPhase"]),
])
def test_metaspace_split_joins_the_phase_before_it_once_no_space_is_left(first, phases):
    ours = PreTokenizer({"type": "Sequence", "pretokenizers": [first, metaspace("always", True)]})
    assert [type(step).__name__ for step in ours.steps] == phases


@pytest.mark.parametrize("pattern", [
    r"^", r"a\Z", r"\bx\s+(?!\S)", r"(?<=a)b", r"(a)\1", r"(?>a+)", r"a++", r"(?!a)b",
    r"\s+(?!\S)x", r"a(?=b)+", r"a*(?!b)", r"a+?(?!b)", r"a(?!bc)", r"[ab", r"(a", r"a)",
    r"a(?=b)|c(?!d)", r"(?:a{1000}){1000}",
])
def test_split_pattern_outside_the_supported_subset_raises_at_build(pattern):
    with pytest.raises(UnsupportedComponentError, match="Split"):
        PreTokenizer(split(pattern))


@pytest.mark.parametrize("pattern", [r"(?i:ss)", r"(?i)[ß]", r"(?i:xst)", r"a(?i:ﬁ)"])
def test_split_pattern_with_multi_character_case_folding_raises_at_build(pattern):
    with pytest.raises(UnsupportedComponentError, match="case folding"):
        PreTokenizer(split(pattern))


def test_bpe_without_merges_tokenizes_by_characters():
    """An empty merge list (a character-level BPE) builds and equals the reference."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    reference = Tokenizer(
        models.BPE(vocab={"a": 0, "b": 1, "[UNK]": 2}, merges=[], unk_token="[UNK]")
    )
    reference.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    pipeline = TokenizationPipeline(json.loads(reference.to_str()))
    texts = ["ab ba c", "", "aaa"]
    assert pipeline.encode(tf.constant(texts)).to_list() == [
        reference.encode(text).ids for text in texts
    ]
