"""WordPiece parity: TokenizerLayer returns exactly what the HF fast tokenizer returns."""

from __future__ import annotations

import json

import pytest
import wordpiece_checkpoints
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parity import (
    LayerRunner,
    assert_same_encoding,
    check_parity,
    check_parity_where_hf_accepts,
    shifted,
)
from samples import FULL, examples, sample, slow_among, slow_beyond
from texts import (
    COMBINING_DIACRITICS,
    EMOJI,
    PUNCTUATION,
    SHARED_DIR,
    SPECIAL_TOKENS,
    WHITESPACE,
    ZERO_WIDTH,
    generate_texts,
    hand_written_count,
)
from tokenizers import Tokenizer
from trained_tokenizers import trained_checkpoint
from wordpiece_checkpoints import VARIANTS, injected_strings, train

MATRIX_TEXTS = 3000 if FULL else 1000


# --- MiniLM (bert-base-uncased vocabulary) on the generated texts -----------------------------


@pytest.fixture(scope="module")
def matrix_texts(generated_texts) -> list[str]:
    """A few thousand texts for the wide config matrix: edge cases plus a spread sample."""
    return generated_texts[:MATRIX_TEXTS]


def test_single_texts_match_on_generated_texts(minilm, generated_texts):
    """Through a traced tf.function, as served."""
    layer, hf = minilm(traced=True)
    check_parity(layer, hf, generated_texts, padding="longest", truncation=True)


def test_pairs_longest_first_match_on_generated_texts(minilm, generated_texts):
    layer, hf = minilm(truncation="longest_first")
    check_parity(
        layer, hf, generated_texts, shifted(generated_texts, 7),
        padding="longest", truncation="longest_first",
    )


def test_unpadded_ragged_output_matches_on_generated_texts(minilm, generated_texts):
    layer, hf = minilm(padding=False)
    check_parity(layer, hf, generated_texts, padding=False, truncation=True)


def test_unpadded_pairs_match(minilm, matrix_texts):
    layer, hf = minilm(padding="do_not_pad")
    check_parity(layer, hf, matrix_texts, shifted(matrix_texts), padding="do_not_pad",
                 truncation=True)


@pytest.mark.parametrize(
    ("padding", "max_length"),
    [("longest", 8), ("longest", 32), ("max_length", 16), ("max_length", 128),
     ("max_length", 512), (False, 8), (False, 128)],
)
def test_padding_and_max_length_match_for_single_texts(minilm, matrix_texts, padding, max_length):
    layer, hf = minilm(padding=padding, max_length=max_length)
    check_parity(layer, hf, matrix_texts, padding=padding, truncation=True, max_length=max_length)


@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_longest_first_truncation_matches_for_pairs(minilm, matrix_texts, max_length):
    layer, hf = minilm(padding="max_length", max_length=max_length, truncation="longest_first")
    check_parity(layer, hf, matrix_texts, shifted(matrix_texts, 3), padding="max_length",
                 truncation="longest_first", max_length=max_length)


@pytest.mark.parametrize("max_length", [1, 3])
def test_max_length_below_special_token_count_matches(minilm, matrix_texts, max_length):
    """HF keeps the special tokens and truncates the content to nothing."""
    texts = matrix_texts[:500]
    layer, hf = minilm(max_length=max_length)
    check_parity(layer, hf, texts, padding="longest", truncation=True, max_length=max_length)
    check_parity(layer, hf, texts, shifted(texts), padding="longest", truncation=True,
                 max_length=max_length)


@pytest.mark.parametrize("max_length", [8, 32])
@pytest.mark.parametrize("truncation", ["only_first", "only_second"])
def test_only_first_and_only_second_truncation_match_for_pairs(
    minilm, matrix_texts, truncation, max_length
):
    """Parity on every pair HF accepts; a batch holding a pair HF rejects raises in the layer.

    HF raises "Sequence to truncate too short" when the sequence to truncate would have to
    lose all its tokens.
    """
    texts, pairs = matrix_texts[:1500], shifted(matrix_texts[:1500], 5)
    layer, hf = minilm(padding="longest", max_length=max_length, truncation=truncation)
    check_parity_where_hf_accepts(layer, hf, texts, pairs, refusals=True, padding="longest",
                                  truncation=truncation, max_length=max_length)


@pytest.mark.parametrize("truncation", ["only_first", "only_second"])
def test_only_truncation_of_single_texts_follows_hf(minilm, matrix_texts, truncation):
    """only_first truncates single texts; only_second accepts only those that fit, as HF."""
    layer, hf = minilm(padding="longest", max_length=8, truncation=truncation)
    check_parity_where_hf_accepts(
        layer, hf, matrix_texts[:1000], refusals=truncation == "only_second",
        padding="longest", truncation=truncation, max_length=8,
    )


@pytest.mark.parametrize(
    ("padding", "max_length", "multiple"),
    [("longest", None, 8), ("max_length", 128, 64), (False, 32, 8)],
)
def test_pad_to_multiple_of_matches(minilm, matrix_texts, padding, max_length, multiple):
    layer, hf = minilm(padding=padding, max_length=max_length, pad_to_multiple_of=multiple)
    kwargs = dict(padding=padding, truncation=True, max_length=max_length,
                  pad_to_multiple_of=multiple)
    check_parity(layer, hf, matrix_texts, **kwargs)
    check_parity(layer, hf, matrix_texts[:1000], shifted(matrix_texts[:1000]), **kwargs)


def test_max_length_not_a_multiple_of_pad_to_multiple_of_raises_like_hf(minilm_path, minilm):
    """HF refuses truncation to a length its padding would then exceed; so does the layer."""
    from tfpipe import TokenizerLayer

    hf = minilm()[1]
    with pytest.raises(ValueError, match="multiple"):
        hf(["text"], padding="longest", truncation=True, max_length=10, pad_to_multiple_of=8)
    with pytest.raises(ValueError, match="multiple"):
        TokenizerLayer.from_pretrained(str(minilm_path), max_length=10, pad_to_multiple_of=8)


def test_no_truncation_keeps_long_texts_whole(minilm, generated_texts):
    """truncation=False: rows longer than model_max_length come back whole, as in HF."""
    long_texts = [t for t in generated_texts if len(t) > 3000][:40]
    texts = long_texts + generated_texts[:200]
    for padding in ("longest", False):
        layer, hf = minilm(padding=padding, truncation=False)
        check_parity(layer, hf, texts, batch_size=64, padding=padding, truncation=False)


def test_max_length_padding_without_truncation_matches_when_rows_fit(minilm, matrix_texts):
    hf = minilm()[1]
    texts = [t for t in matrix_texts if len(hf(t)["input_ids"]) <= 64]
    layer, hf = minilm(padding="max_length", truncation=False, max_length=64)
    check_parity(layer, hf, texts, padding="max_length", truncation=False, max_length=64)


def test_token_type_ids_can_be_turned_off_like_hf(minilm, matrix_texts):
    layer, hf = minilm(return_token_type_ids=False)
    texts = matrix_texts[:500]
    check_parity(layer, hf, texts, shifted(texts), padding="longest", truncation=True,
                 return_token_type_ids=False)


# --- Hypothesis: random Unicode ----------------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
TEXTS = st.one_of(
    ANY_TEXT,
    st.text(st.sampled_from(WHITESPACE + ZERO_WIDTH + "ab."), max_size=30),
    st.lists(st.sampled_from(EMOJI + ("a", " ", "\u200d", "\ufe0f", "\U0001f3fd")), max_size=12)
    .map("".join),
    st.text(st.sampled_from("aeiouAEIOUσΣιíñ " + COMBINING_DIACRITICS + "\u0345"), max_size=30),
    st.lists(st.sampled_from(SPECIAL_TOKENS + ("[", "]", "mask", "MASK", " ", "a", "é")),
             max_size=10).map("".join),
    st.text(st.sampled_from(PUNCTUATION + "0123456789 "), max_size=30),
)
HYPOTHESIS = settings(max_examples=examples(60, 300), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
def test_random_unicode_single_texts_match(minilm, texts):
    layer, hf = minilm()
    assert_same_encoding(layer(texts), hf(texts, padding="longest", truncation=True), texts,
                         tokens=hf.convert_ids_to_tokens)


@HYPOTHESIS
@given(pairs=st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=4))
def test_random_unicode_pairs_match_with_truncation(minilm, pairs):
    texts, partners = [a for a, _ in pairs], [b for _, b in pairs]
    layer, hf = minilm(max_length=24)
    expected = hf(texts, partners, padding="longest", truncation=True, max_length=24)
    assert_same_encoding(layer(texts, partners), expected, texts, partners,
                         tokens=hf.convert_ids_to_tokens)


# --- Tokenizers trained at test time (recipes: wordpiece_checkpoints.py) --------------------------

@pytest.fixture(scope="module")
def training_corpus() -> list[str]:
    return generate_texts(4000, seed=7)


# Variants whose normalizer or pre-tokenizer tests/test_components.py checks against the
# reference and whose WordPiece use another default variant or MiniLM already has: in make
# test-full only.
COVERED_VARIANTS = (
    "BertNormalizer-uncased-strip_accents=None",
    "BertNormalizer-uncased-strip_accents=False",
    "BertNormalizer-cased-strip_accents=True",
    "Sequence[NFD,Lowercase,StripAccents]",
    "NFKD",
    "Whitespace",
    "Sequence[BertPreTokenizer,Digits(grouped)]",
)


@pytest.mark.parametrize("name", slow_among(list(VARIANTS), COVERED_VARIANTS))
def test_trained_wordpiece_variant_matches(name, training_corpus, hf_tokenizer):
    from tfpipe import TokenizerLayer
    from tfpipe.tokenization import UnsupportedComponentError

    variant = VARIANTS[name]
    folder = trained_checkpoint(f"wordpiece {name}", lambda: train(variant, training_corpus),
                                wordpiece_checkpoints.__file__)
    try:
        layer = TokenizerLayer.from_pretrained(str(folder))
    except UnsupportedComponentError as e:
        pytest.fail(f"{name} is not supported by TokenizerLayer yet: {e}")
    runner, hf = LayerRunner(layer), hf_tokenizer(folder)
    inject = injected_strings(variant)
    texts = sample(generate_texts(1500, seed=11, inject=inject), 250,
                   keep_first=hand_written_count(inject))
    check_parity(runner, hf, texts, padding="longest", truncation=True)
    check_parity(runner, hf, texts, shifted(texts, 3), padding="longest", truncation=True)


# --- Real checkpoints on the course corpus --------------------------------------------------------


def shared_wordpiece_tokenizers() -> list[str]:
    folders = sorted((SHARED_DIR / "tokenizers").glob("*/tokenizer.json"))
    return [
        f.parent.name for f in folders
        if json.loads(f.read_text(encoding="utf-8"))["model"].get("type") == "WordPiece"
    ] or ["<no shared tokenizers>"]


@pytest.mark.parametrize("name", shared_wordpiece_tokenizers())
def test_shared_wordpiece_checkpoint_matches_on_course_corpus(
    name, shared_dir, corpus, tokenizer_layer, hf_tokenizer
):
    path = shared_dir / "tokenizers" / name
    layer, hf = tokenizer_layer(path), hf_tokenizer(path)
    texts = sample(corpus, 3000)
    check_parity(layer, hf, texts, padding="longest", truncation=True)
    quarter = texts[: len(texts) // 4]
    check_parity(layer, hf, quarter, shifted(quarter, 11), padding="longest", truncation=True)


# --- Long single texts: cut before encoding where exact ---------------------------------------


def long_texts(generated_texts: list[str]) -> list[str | bytes]:
    """Texts far past the early-stop cut (8 KB at max_length 128), including ones built to
    defeat it: no whitespace near the cut, few tokens per byte, whitespace runs, combining
    marks and invalid UTF-8 at the cut, CJK (a token per character)."""
    joined = [" ".join(generated_texts[i : i + step]) for step, i in ((40, 0), (400, 500))]
    cut = 126 * 64
    texts: list[str | bytes] = [*joined, joined[1] * 20]
    texts += [
        "x" * (cut + 5000) + " tail words",
        " ".join(["y" * 150] * 300),
        " " * 20000 + "words after a long run of spaces " * 10,
        "\n\t\r" * 4000 + joined[0],
        ("e\u0301 " * (cut // 2)) + "cafe\u0301 " * 500,
        "\u4e2d\u6587" * 6000,
        ("a" * (cut - 3)) + "\u00e9\u0301 b" * 100,
        ("w " * (cut // 2)).encode() + b"\xff\xfe \x80 words" * 100,
        ("z" * cut).encode() + b"\xe4\xb8 " + b"more " * 100,
        joined[0][: cut + 1],
        # At max_length 128 the cut text holds exactly the budget: 48 "the" and 78 words of
        # 101 letters, one [UNK] each, the last straddling the cut.
        "the " * 48 + ("a" * 101 + " ") * 200,
    ]
    return texts


@pytest.mark.parametrize("max_length", [128, 16, 512])
def test_long_single_texts_cut_before_encoding_match(minilm, generated_texts, max_length):
    layer, hf = minilm(traced=True, max_length=max_length)
    assert layer.layer._cut_bytes is not None, "MiniLM is whitespace-cut safe"
    check_parity(
        layer, hf, long_texts(generated_texts), batch_size=4,
        padding="longest", truncation=True, max_length=max_length,
    )


def test_long_pairs_are_not_cut_and_match(minilm, generated_texts):
    """Pairs are always encoded whole (longest_first depends on which one is longer)."""
    texts = long_texts(generated_texts)[:6]
    layer, hf = minilm(truncation="longest_first", max_length=127)
    check_parity(
        layer, hf, texts, texts[::-1], batch_size=3,
        padding="longest", truncation="longest_first", max_length=127,
    )


@pytest.mark.slow
def test_a_ten_megabyte_text_costs_about_what_its_first_tokens_cost(minilm, generated_texts):
    import time

    layer, _ = minilm(traced=True, max_length=128)
    text = " ".join(generated_texts[:400])
    huge = (text + " ") * (10 * 2**20 // len(text.encode()) + 1)
    small = text[:16_000]

    def seconds(value: str) -> float:
        layer([value])
        start = time.perf_counter()
        for _ in range(3):
            layer([value])
        return (time.perf_counter() - start) / 3

    assert seconds(huge) < 10 * seconds(small) + 0.05


@pytest.mark.parametrize(
    ("name", "max_length"),
    slow_beyond([(name, max_length) for max_length in (None, 128)
                 for name in shared_wordpiece_tokenizers()], [("bert-base-uncased", None)]),
)
def test_shared_wordpiece_checkpoint_matches_on_whole_course_chapters(
    name, max_length, shared_dir, corpus, tokenizer_layer, hf_tokenizer
):
    """The corpus joined into ~60 KB texts: long single texts go through the early-stop cut."""
    path = shared_dir / "tokenizers" / name
    layer, hf = tokenizer_layer(path, max_length=max_length), hf_tokenizer(path)
    assert layer.layer._cut_bytes is not None
    chapters = ["\n".join(corpus[i : i + 300]) for i in range(0, len(corpus), 300)]
    check_parity(
        layer, hf, chapters, batch_size=16, padding="longest", truncation=True,
        max_length=max_length,
    )


@pytest.mark.parametrize("max_candidates", [0, 1 << 20], ids=["stepwise", "at once"])
def test_greedy_matches_reference_model_both_ways(minilm_path, generated_texts, monkeypatch,
                                                  max_candidates):
    """Words beyond the vocabulary, their longest matches looked up all at once or (batches
    with too many candidates) one piece per word at a time."""
    import tensorflow as tf

    from tfpipe.tokenization.models import wordpiece

    monkeypatch.setattr(wordpiece, "MAX_CANDIDATES", max_candidates)
    document = json.loads((minilm_path / "tokenizer.json").read_text(encoding="utf-8"))
    reference = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    words = sorted({
        word
        for text in generated_texts[:600]
        for word, _ in reference.pre_tokenizer.pre_tokenize_str(
            reference.normalizer.normalize_str(text)
        )
    }) + ["a" * 100, "a" * 101, "##", "unaffable", "x\u0301yzzy"]
    model = wordpiece.WordPiece(document["model"])
    got = model(tf.ragged.constant([[ord(c) for c in w] for w in words], tf.int32)).to_list()
    expected = [[token.id for token in reference.model.tokenize(w)] for w in words]
    wrong = [(w, g, e) for w, g, e in zip(words, got, expected, strict=True) if g != e]
    assert not wrong, f"{len(wrong)} of {len(words)} words differ, first: {wrong[:3]}"
