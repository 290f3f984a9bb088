"""Added tokens of every length, flag and overlap, matched as `tokenizers` matches them.

`tokenizers` finds added tokens with aho-corasick in leftmost-longest mode: raw tokens in the
text, normalized ones (by their normalized content) in the normalized text between. Issue 19:
a Llama-style checkpoint with runs of up to 31 ▁ added as normalized tokens, on markdown
tables' space runs. The default run checks that checkpoint; the slow matrix crosses
lstrip/rstrip/single_word with normalized/special tokens of 1 to 200 characters, and
overlapping, nested and normalization-merged tokens.
"""

from __future__ import annotations

import random
from itertools import product
from pathlib import Path

import pytest
from parity import check_parity, shifted
from samples import sample
from texts import generate_texts
from tokenizers import AddedToken, normalizers
from trained_tokenizers import (
    SPACE_RUN_NORMALIZER,
    train_space_run_tokens,
    train_with_added_tokens,
    trained_checkpoint,
)

LENGTHS = (1, 2, 16, 17, 31, 64, 200)
FILLERS = ("word", "Ab", "ab", "x", "é", "日本", "-", ".", "|", " ", "  ", "\t", "\n", "\u3000",
           "\xa0", "<s>", "▁")
NORMALIZERS = {
    "llama": SPACE_RUN_NORMALIZER,
    "nfkc-lowercase": normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
}


def training_texts() -> list[str]:
    return generate_texts(2000, seed=19)


def texts_around(tokens: list[str], count: int, seed: int) -> list[str]:
    """Texts made of the tokens, runs of their characters a little shorter or longer than
    them, pieces of them, and words, spaces and other whitespace between."""
    rng = random.Random(seed)

    def part() -> str:
        token = rng.choice(tokens)
        kind = rng.randrange(4)
        if kind == 0:
            return token
        if kind == 1:
            return token[rng.randrange(len(token))] * max(1, len(token) + rng.randint(-2, 2))
        if kind == 2:
            start = rng.randrange(len(token))
            return token[start : rng.randint(start + 1, len(token))]
        return rng.choice(FILLERS) * rng.choice((1, 1, 2, 3, 17))

    return ["".join(part() for _ in range(rng.randint(1, 8))) for _ in range(count)]


def space_run_texts(corpus: list[str]) -> list[str]:
    """Course lines with runs of 8 spaces or more (markdown tables, aligned code), and
    generated texts with runs of every length from 1 to 100."""
    lines = sample([text for text in corpus if " " * 8 in text], 600)
    words = ["| a", "b |", "word", "日本", "-", "\n", "\t", "▁▁", "<s>", "x y"]
    return lines + texts_around(words + [" " * n for n in range(1, 101)], 600, seed=19)


def checkpoint(name: str, train) -> Path:
    return trained_checkpoint(f"added tokens {name}", train, __file__)


def check_singles_and_pairs(layer_of, hf, texts: list[str]) -> None:
    """Singles untruncated, then pairs with longest-first truncation and padding."""
    check_parity(layer_of(padding=False, truncation=False), hf, texts, truncation=False)
    check_parity(layer_of(padding="longest"), hf, texts, shifted(texts, 7),
                 padding="longest", truncation=True)


# --- Issue 19: runs of up to 31 ▁ as normalized tokens ---------------------------------------

def test_space_run_tokens_of_every_length_match_on_long_space_runs(
    corpus, tokenizer_layer, hf_tokenizer
):
    path = checkpoint("space runs", lambda: train_space_run_tokens(training_texts()))
    hf, texts = hf_tokenizer(path), space_run_texts(corpus)
    # The texts need the long tokens: ▁ runs of 17 to 31 (32 with Prepend's) in HF's ids.
    longest = {hf.convert_tokens_to_ids("▁" * n): n for n in range(17, 32)}
    assert {i for row in hf(texts)["input_ids"] for i in row} & set(longest)
    check_singles_and_pairs(lambda **config: tokenizer_layer(path, **config), hf, texts)


# --- Slow: every flag, length and overlap ------------------------------------------------------

def matrix_tokens(lstrip: bool, rstrip: bool, single_word: bool) -> list[AddedToken]:
    """Each LENGTH of four token families, the flags on all: normalized (▁ runs, the issue),
    normalized special (full-width letters that NFKC changes), raw (multi-byte), raw special
    (tab runs, whitespace that lstrip/rstrip of other tokens may absorb)."""
    families = (("▁", True, False), ("Ｘy", True, True), ("日本", False, False),
                ("\t", False, True))
    return [
        AddedToken((unit * length)[:length], lstrip=lstrip, rstrip=rstrip,
                   single_word=single_word, normalized=normalized, special=special)
        for unit, normalized, special in families
        for length in LENGTHS
    ]


@pytest.mark.slow
@pytest.mark.parametrize("normalizer", sorted(NORMALIZERS))
@pytest.mark.parametrize("lstrip,rstrip,single_word", list(product((False, True), repeat=3)))
def test_added_token_matrix_matches(
    normalizer, lstrip, rstrip, single_word, tokenizer_layer, hf_tokenizer
):
    tokens = matrix_tokens(lstrip, rstrip, single_word)
    name = f"matrix {normalizer} lstrip={lstrip} rstrip={rstrip} single_word={single_word}"
    path = checkpoint(name, lambda: train_with_added_tokens(
        training_texts(), tokens, NORMALIZERS[normalizer]))
    hf = hf_tokenizer(path)
    held = {t.content: t for t in hf.added_tokens_decoder.values()}
    for token in tokens:  # the checkpoint has the flags under test
        assert (held[token.content].normalized, held[token.content].special,
                held[token.content].lstrip, held[token.content].single_word) == (
            token.normalized, token.special, lstrip, single_word)
    contents = [t.content for t in tokens] + [" " * n for n in (1, 16, 17, 64)] + ["Ｘ", "ｘY"]
    texts = texts_around(contents, 1500, seed=len(name))
    check_singles_and_pairs(lambda **config: tokenizer_layer(path, **config), hf, texts)


OVERLAPPING = (
    # Leftmost wins over longest ("abc" in "abcd" before "bcd"), then longest at a position.
    AddedToken("ab"), AddedToken("abc"), AddedToken("bcd"), AddedToken("cde"), AddedToken("b"),
    # Prefixes of each other, raw and normalized, multi-byte.
    AddedToken("日"), AddedToken("日本"), AddedToken("日本語", normalized=False),
    AddedToken("本語"),
    # Contents that normalize alike: ﬁ → fi under NFKC, Hello → hello; a special token among.
    AddedToken("fi"), AddedToken("ﬁx"), AddedToken("ﬁ", special=True, normalized=True),
    AddedToken("FI"),
    AddedToken("hello"), AddedToken("Hello", special=True, normalized=True),
    AddedToken("HELLO", normalized=False),
    # Raw tokens found first, inside what a normalized token would match.
    AddedToken("xyz", normalized=False), AddedToken("wxyz"), AddedToken("yz"),
    # Whitespace inside and around.
    AddedToken("a b"), AddedToken(" b", normalized=False, rstrip=True),
    # Whitespace tokens inside the whitespace an rstrip token takes: with lstrip, `tokenizers`
    # drops them (an empty split); without, they stay.
    AddedToken("\n", normalized=False, special=True, lstrip=True, rstrip=True),
    AddedToken("\r", normalized=False, rstrip=True), AddedToken("\x0c", normalized=False),
)


@pytest.mark.slow
@pytest.mark.parametrize("normalizer", sorted(NORMALIZERS))
def test_overlapping_and_nested_tokens_match(normalizer, tokenizer_layer, hf_tokenizer):
    path = checkpoint(f"overlapping {normalizer}", lambda: train_with_added_tokens(
        training_texts(), list(OVERLAPPING), NORMALIZERS[normalizer]))
    contents = [t.content for t in OVERLAPPING] + ["abcde", "ｂｃ", "ＨＥＬＬＯ", "ﬁﬁ"]
    texts = texts_around(contents, 2000, seed=3)
    check_singles_and_pairs(lambda **config: tokenizer_layer(path, **config),
                            hf_tokenizer(path), texts)
