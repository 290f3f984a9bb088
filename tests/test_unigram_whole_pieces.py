"""The Unigram whole-piece table: a word that is one vocabulary piece the reference keeps
whole takes its id without the lattice; every other word, and every word when the build-time
check fails, takes the Viterbi pass. Either way each word gets the reference's pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from parity import check_parity
from samples import sample, slow_beyond
from tokenizers import Tokenizer

from tfpipe.tokenization.checkpoint import read_as_tokenizers_does
from tfpipe.tokenization.models.unigram import Unigram, whole_pieces
from tfpipe.tokenization.reference import reference_tokenizer

UNIGRAM_CHECKPOINTS = [
    "t5-small",
    "albert-base-v2",
    "deberta-v3-small",
    "hf-fixture-test-sentencepiece",
    "hf-fixture-test-sentencepiece-no-bos",
]


def shared_model(shared_dir, name: str) -> tuple[dict, Tokenizer]:
    """The model section as `tokenizers` holds it, and the checkpoint's reference."""
    text = (shared_dir / "tokenizers" / name / "tokenizer.json").read_text(encoding="utf-8")
    return read_as_tokenizers_does(text)["model"], Tokenizer.from_str(text)


def segment(model: Unigram, words: list[str], starts: bool = False) -> list[list[int]]:
    """The model's ids for `words` (run eagerly: tracing it costs more than small batches)."""
    code_points = [ord(c) for word in words for c in word]
    rows = tf.RaggedTensor.from_row_lengths(
        tf.constant(code_points, tf.int32), tf.constant([len(w) for w in words], tf.int64)
    )
    return model(rows, starts=starts).to_list()


def reference_ids(reference: Tokenizer, words: list[str]) -> list[list[int]]:
    return [[token.id for token in reference.model.tokenize(word)] for word in words]


def listed(model: Unigram, words: list[str]) -> list[bool]:
    return (model.whole.lookup(tf.constant(words)) >= 0).numpy().tolist()


def words_around_the_table(component: dict, size: int) -> tuple[list[str], list[str]]:
    """(pieces the table lists, words it does not: pieces the reference splits, pieces with
    a character added, runs of a piece), `size` of each at most."""
    table = whole_pieces.whole_pieces(
        component, component["vocab"], {t: i for i, (t, _) in enumerate(component["vocab"])}
    )
    split = [token for token, _ in component["vocab"] if token not in table]
    listed_pieces = sample(sorted(table), size)
    extended = [piece + suffix for piece in listed_pieces for suffix in ("s", ",", "▁")]
    others = split + [word for word in extended if word not in table] + [
        piece * 3 for piece in listed_pieces[:50] if piece * 3 not in table
    ]
    return listed_pieces, sample(others, size)


@pytest.mark.parametrize(
    "name", slow_beyond(UNIGRAM_CHECKPOINTS, ["t5-small", "hf-fixture-test-sentencepiece"])
)
def test_words_in_and_out_of_the_table_get_the_reference_pieces(name, shared_dir):
    component, reference = shared_model(shared_dir, name)
    model = Unigram(component)
    hits, misses = words_around_the_table(component, 500)
    assert len(hits) > 100 and len(misses) > 100
    assert all(listed(model, hits)) and not any(listed(model, misses))
    # One batch mixing both, with repeats: each row must be its own word's pieces.
    words = [word for pair in zip(hits, misses, hits[::-1], strict=False) for word in pair]
    assert segment(model, words) == reference_ids(reference, words)
    packed = segment(model, words, starts=True)
    assert [[value & 0x7FFFFFFF for value in row] for row in packed] == reference_ids(
        reference, words
    )


def test_a_batch_of_listed_words_only_and_an_empty_batch(shared_dir):
    """Nothing left for the Viterbi pass: its branch is skipped."""
    component, reference = shared_model(shared_dir, "hf-fixture-test-sentencepiece")
    model = Unigram(component)
    words = ["▁the", "▁and", "▁the", "s", "▁"]
    assert all(listed(model, words))
    assert segment(model, words) == reference_ids(reference, words)
    assert segment(model, []) == []


def test_layer_matches_hf_on_texts_of_listed_and_unlisted_words(
    shared_dir, tokenizer_layer, hf_tokenizer
):
    path = shared_dir / "tokenizers" / "t5-small"
    component, _ = shared_model(shared_dir, "t5-small")
    hits, misses = words_around_the_table(component, 600)
    words = [w.replace("▁", " ") for pair in zip(hits, misses, strict=False) for w in pair]
    texts = [" ".join(words[at : at + 12]) for at in range(0, len(words), 12)]
    texts += ["The quick brown fox jumps over the lazy dog.", "the the the", "", "日本語 the"]
    layer = tokenizer_layer(path, padding=False, truncation=False)
    check_parity(layer, hf_tokenizer(path), texts, padding=False, truncation=False)


# --- Ties: a piece whose score equals another segmentation's sum ------------------------------


def tie_component(byte_fallback: bool = False) -> dict:
    """A small Unigram model with exact ties, pieces that lose to their parts and a
    duplicate piece."""
    vocab = [
        ["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["c", -1.5], ["d", -1.5],
        ["ab", -2.0],  # ties a + b
        ["cd", -3.5],  # loses to c + d
        ["abcd", -5.0],  # ties ab + c + d and a + b + c + d
        ["bc", -2.5],  # ties b + c
        ["abc", -4.0],  # loses to ab + c (-3.5)
        ["dd", -3.0],  # ties d + d
        ["ddd", -4.5],  # ties d + d + d
        ["ba", -2.0], ["ba", -1.0],  # a duplicate: the later id is the token's
        ["▁", -0.5], ["▁ab", -2.5],  # ties ▁ + ab
    ]
    if byte_fallback:
        vocab += [[f"<0x{b:02X}>", -10.0] for b in range(256)]
    return {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": byte_fallback}


@pytest.mark.parametrize("byte_fallback", [False, True])
def test_ties_and_lost_pieces_follow_the_reference(byte_fallback):
    component = tie_component(byte_fallback)
    reference = reference_tokenizer(model=component)
    model = Unigram(component)
    tokens = [token for token, _ in component["vocab"]]
    words = tokens + [
        "abcd" * 3, "ddd" + "ab", "▁abc", "bcd", "x", "abx", "xab", "ba" * 3, "é", "aé",
    ]
    assert segment(model, words) == reference_ids(reference, words)
    held = json.loads(reference.to_str())["model"]["vocab"]
    table = whole_pieces.whole_pieces(component, held, {t: i for i, (t, _) in enumerate(held)})
    assert "cd" not in table and "abc" not in table
    assert all(reference_ids(reference, [token]) == [[index]] for token, index in table.items())


# --- The build-time check ---------------------------------------------------------------------


def test_table_is_empty_when_the_reference_holds_other_scores(shared_dir, monkeypatch):
    """A reference whose scores differ from the compiled ones by one ulp (as a score
    `tokenizers` reads differently would) lists nothing: every word takes the Viterbi pass
    and still gets the pieces of the scores compiled."""
    component, reference = shared_model(shared_dir, "hf-fixture-test-sentencepiece")
    nudged = json.loads(json.dumps(component))
    nudged["vocab"][5][1] = float(np.nextafter(nudged["vocab"][5][1], 0.0))
    monkeypatch.setattr(
        whole_pieces, "reference_tokenizer", lambda model: reference_tokenizer(model=nudged)
    )
    model = Unigram(component)
    hits, misses = words_around_the_table(component, 300)
    assert not any(listed(model, hits + misses))
    words = hits + misses
    assert segment(model, words) == reference_ids(reference, words)


def test_table_is_empty_when_the_reference_refuses_the_model(shared_dir, monkeypatch):
    component, reference = shared_model(shared_dir, "hf-fixture-test-sentencepiece")

    def refuse(model):
        raise Exception("refused")  # tokenizers raises a bare Exception

    monkeypatch.setattr(whole_pieces, "reference_tokenizer", refuse)
    model = Unigram(component)
    words = ["▁the", "▁and", "xyz"]
    assert not any(listed(model, words))
    assert segment(model, words) == reference_ids(reference, words)
