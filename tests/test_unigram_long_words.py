"""Unigram long words: under right truncation the model stops early inside them; otherwise
(no truncation, left truncation, pairs) they are segmented whole from checked block passes.

In its own file (its own process under tests/run_isolated.py): megabyte words and several
large vocabularies would add to the memory of the other SentencePiece parity tests.
"""

from __future__ import annotations

import json
import time
import weakref
from pathlib import Path

import pytest
from parity import LayerRunner, check_parity, shifted
from samples import slow_beyond
from sentencepiece_checkpoints import SPIECE_INJECT, trained
from texts import generate_texts

from tfpipe.tokenization.models.unigram import long_words

# Measured on 2 cores: ~1 s for a 1 MB or a 10 MB whitespace-free word (t5-small, 512 tokens).
LARGE_WORD_SECONDS = 30
# Measured on 2 cores: 2.8 s for a 1 MB word segmented whole by checked block passes, 26 s by
# the stepwise pass.
WHOLE_MEGABYTE_WORD_SECONDS = 12


# --- Long words under right truncation: the Unigram model stops early, exactly -------------------


def whitespace_free(texts: list[str], sizes: tuple[int, ...]) -> list[str]:
    """The texts joined without whitespace and cut into words of the given sizes in turn."""
    joined = "".join("".join(text.split()) for text in texts)
    words, at = [], 0
    while at < len(joined):
        size = sizes[len(words) % len(sizes)]
        words.append(joined[at : at + size])
        at += size
    return words


# Long words that settle early, ones that may not (runs of one or two characters, words
# the vocabulary mostly lacks), and short ones beside them.
REPEATS = ["a" * 3000, "=" * 2500, "ab" * 1500, "▁" * 700, "-_" * 900, "x"]
SHORT_QUESTIONS = ["Is it?", "", "Why?"]


# Each strategy at its own max_length: cuts after 8 characters' worth of tokens and after 40.
CUT_STRATEGIES = {"longest_first": 8, "only_first": 40, "only_second": 8}

# Pairs truncated longest_first are cut to this many characters a word: HF builds the cross
# product of both sequences' overflowing chunks (each holding the other's chunks again), so
# two 4,000-character words at max_length 8 take it past 20 GB. 200 characters still pass
# the early stop's cut length for both sequences (t5-small: 3 tokens × 16 + 64 characters).
PAIR_WORD_CHARACTERS = 200


@pytest.mark.parametrize("name", slow_beyond(["t5-small", "deberta-v3-small"], ["t5-small"]))
def test_long_words_cut_by_truncation_keep_hf_ids(name, shared_dir, corpus, hf_tokenizer):
    from tfpipe import TokenizerLayer

    path = shared_dir / "tokenizers" / name
    words = whitespace_free(corpus[::27], (300, 1700, 90, 4100, 650)) + REPEATS
    short = [SHORT_QUESTIONS[i % 3] for i in range(len(words))]
    hf = hf_tokenizer(path)
    for strategy, max_length in CUT_STRATEGIES.items():
        layer = TokenizerLayer.from_pretrained(
            str(path), max_length=max_length, truncation=strategy
        )
        # The cut must be what is tested: the limit is set and words pass the cut length.
        assert layer._encode_limited is not layer._encode
        kwargs = dict(padding="longest", truncation=strategy, max_length=max_length)
        if strategy == "longest_first":
            check_parity(LayerRunner(layer), hf, words, **kwargs)
            # Two long sequences: with an even pair budget (t5-small: 6) both stop early.
            cut = [word[:PAIR_WORD_CHARACTERS] for word in words]
            pair = (cut, shifted(cut, 2))
        else:
            pair = (words, short) if strategy == "only_first" else (short, words)
        check_parity(LayerRunner(layer), hf, *pair, **kwargs)


def test_long_unknown_and_byte_fallback_words_keep_hf_ids(hf_tokenizer):
    """Words of characters the vocabulary lacks: unknown runs fuse (or become bytes) across
    any cut, so such words settle late or are segmented whole."""
    from tfpipe import TokenizerLayer

    texts = generate_texts(400, seed=21, inject=SPIECE_INJECT)
    unknown = "".join(chr(0x4E00 + i % 500) for i in range(3000))
    words = whitespace_free(texts, (250, 1200, 3000)) + [
        unknown, unknown[:400] + "hello" * 100, "hello" * 100 + unknown[:900] + "world" * 5
    ]
    for name in ("Unigram-Metaspace", "Unigram-byte_fallback"):
        folder = trained(name)
        layer = TokenizerLayer.from_pretrained(str(folder), max_length=10)
        assert layer._encode_limited is not layer._encode
        check_parity(
            LayerRunner(layer), hf_tokenizer(folder), words, padding="longest",
            truncation=True, max_length=10,
        )
    # A budget so large that its cut length passes int32: words are segmented whole.
    huge = TokenizerLayer.from_pretrained(str(folder), max_length=10**9)
    check_parity(
        LayerRunner(huge), hf_tokenizer(folder), words[:20], padding="longest",
        truncation=True, max_length=10**9,
    )


@pytest.mark.slow
def test_megabyte_words_cost_about_their_first_tokens(shared_dir, corpus, hf_tokenizer):
    """One whitespace-free word of 1 or 10 MB under truncation: bounded time (a few
    thousand characters are segmented, not millions), ids equal to HF's on the 1 MB word.
    The 10 MB word repeats the 1 MB one's prose, so its truncated ids are the same; HF's own
    Unigram lattice for a 10 MB word takes more memory than the test machine has."""
    from tfpipe import TokenizerLayer

    path = shared_dir / "tokenizers" / "t5-small"
    prose = "".join("".join(text.split()) for text in corpus[:4000])
    layer = LayerRunner(TokenizerLayer.from_pretrained(str(path)))
    layer(["warm-up"])
    want = None
    for megabytes in (1, 10):
        size = megabytes * 2**20
        word = (prose * (size // len(prose.encode()) + 1))[:size]
        started = time.perf_counter()
        got = layer([word])
        seconds = time.perf_counter() - started
        assert seconds < LARGE_WORD_SECONDS, (megabytes, seconds)
        if want is None:
            want = hf_tokenizer(path)([word], padding="longest", truncation=True)
        for key, ids in want.items():
            assert got[key].numpy().tolist() == ids, (megabytes, key)


# --- Long words segmented whole: checked block passes -------------------------------------------


def left_truncating(source: Path, folder: Path) -> Path:
    """A copy of a checkpoint whose tokenizer_config.json truncates on the left."""
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, "truncation_side": "left"}), encoding="utf-8"
    )
    return folder


# Words past long_words.LONG_WORD_CHARS: prose, and runs of one to three characters, where ties
# between segmentations are everywhere and f64 rounding decides them.
LONG_REPEATS = [
    "a" * 5000,
    "ab" * 2500,
    "=" * 4100,
    "-_" * 2100,
    "abc" * 1500 + "d" * 900,
    "▁" * 2300,
    "".join(chr(0x4E00 + i % 700) for i in range(2600)),
]
# (pair max_length): odd pair budgets, where longest_first needs both whole lengths.
ODD_PAIR_MAX_LENGTH = {"t5-small": 41, "albert-base-v2": 42, "deberta-v3-small": 42}


@pytest.mark.parametrize(
    "name", slow_beyond(["t5-small", "albert-base-v2", "deberta-v3-small"], ["t5-small"])
)
def test_long_words_segmented_whole_keep_hf_ids(name, shared_dir, corpus, hf_tokenizer, tmp_path):
    """No truncation, left truncation and odd-budget pairs need a long word's whole
    segmentation: the checked block passes give HF's ids."""
    from tfpipe import TokenizerLayer

    assert all(len(word) > long_words.LONG_WORD_CHARS for word in LONG_REPEATS)
    path = shared_dir / "tokenizers" / name
    words = whitespace_free(corpus[::31], (2100, 5200, 300, 9000)) + LONG_REPEATS
    hf = hf_tokenizer(path)
    whole = TokenizerLayer.from_pretrained(str(path), padding=False, truncation=False)
    check_parity(LayerRunner(whole), hf, words, truncation=False)
    pair_length = ODD_PAIR_MAX_LENGTH[name]
    pairs = TokenizerLayer.from_pretrained(str(path), max_length=pair_length)
    cut = [word[:2500] for word in words[::3]]
    check_parity(
        LayerRunner(pairs), hf, cut, shifted(cut, 1), padding="longest",
        truncation="longest_first", max_length=pair_length,
    )
    left = left_truncating(path, tmp_path / name)
    layer = TokenizerLayer.from_pretrained(str(left), max_length=40)
    check_parity(
        LayerRunner(layer), hf_tokenizer(left), words, padding="longest", truncation=True,
        max_length=40,
    )


def test_long_words_failing_the_check_get_the_stepwise_pass(shared_dir, hf_tokenizer, monkeypatch):
    """With no check run, every long word takes the fallback: the same ids."""
    from tfpipe import TokenizerLayer
    from tfpipe.tokenization import compiled

    monkeypatch.setattr(long_words, "LONG_WORD_REPAIRS", -1)
    # A compiled albert-base-v2 still alive from another test was traced with the check.
    monkeypatch.setattr(compiled, "_COMPILED", weakref.WeakValueDictionary())
    path = shared_dir / "tokenizers" / "albert-base-v2"
    layer = TokenizerLayer.from_pretrained(str(path), padding=False, truncation=False)
    check_parity(LayerRunner(layer), hf_tokenizer(path), LONG_REPEATS[:3], truncation=False)


def test_megabyte_word_under_left_truncation_in_bounded_time(
    shared_dir, corpus, hf_tokenizer, tmp_path
):
    """A 1 MB whitespace-free word truncated on the left: its whole segmentation in
    seconds (checked block passes, not the stepwise pass), ids equal to HF's."""
    from tfpipe import TokenizerLayer

    path = left_truncating(shared_dir / "tokenizers" / "t5-small", tmp_path / "t5-left")
    prose = "".join("".join(text.split()) for text in corpus[:4000])
    word = (prose * (2**20 // len(prose) + 1))[: 2**20]
    layer = LayerRunner(TokenizerLayer.from_pretrained(str(path)))
    layer(["warm-up"])
    started = time.perf_counter()
    got = layer([word])
    seconds = time.perf_counter() - started
    assert seconds < WHOLE_MEGABYTE_WORD_SECONDS, seconds
    want = hf_tokenizer(path)([word], padding="longest", truncation=True)
    for key, ids in want.items():
        assert got[key].numpy().tolist() == ids, key
