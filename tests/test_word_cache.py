"""The Unigram model's word cache (`models/word_cache.py`): a word met again takes the tokens
kept for it, which are the reference's; only whole segmentations are kept, never more words
than the capacity, and nothing of it is saved with an export."""

from __future__ import annotations

import threading

import pytest
import tensorflow as tf
from annotations import ANNOTATED, served_and_expected
from parity import LayerRunner, check_parity
from pipeline_checkpoints import assert_holds_no_tables
from sentencepiece_checkpoints import trained
from test_unigram_whole_pieces import reference_ids, segment, tie_component
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from tfpipe import TokenizerLayer
from tfpipe.tokenization.models.unigram import Unigram
from tfpipe.tokenization.models.word_cache import ROW_WIDTH, WordCache
from tfpipe.tokenization.reference import reference_tokenizer

OFFSETS = dict(return_offsets_mapping=True, **ANNOTATED)
WORDS = ["▁abcd", "▁ab", "abcddd", "ddd", "▁x", "bcd", "ba", "aé", "▁abcd", "ba"]


def tie_model(capacity: int | None = None) -> tuple[Unigram, Tokenizer]:
    component = tie_component(byte_fallback=True)
    model = Unigram(component)
    if capacity is not None:
        model.cache = WordCache(capacity)
    return model, reference_tokenizer(model=component)


def cached(model: Unigram, words: list[str]) -> list[bool]:
    return model.cache.lookup(tf.constant(words))[1].numpy().tolist()


def test_words_met_again_take_the_reference_tokens_from_the_cache():
    model, reference = tie_model()
    first = segment(model, WORDS)
    whole = model.whole.lookup(tf.constant(WORDS)).numpy() >= 0
    assert cached(model, WORDS) == [not listed for listed in whole]
    assert segment(model, WORDS) == first == reference_ids(reference, WORDS)
    packed = segment(Unigram(tie_component(byte_fallback=True)), WORDS, starts=True)
    assert segment(model, WORDS, starts=True) == packed


def test_a_cached_word_is_answered_from_the_cache_not_segmented_again():
    """What makes the tests above prove the cached path: a row planted in the cache is
    what comes back."""
    model, _ = tie_model()
    planted = [7, 3, 2] + [-1] * (ROW_WIDTH - 3)
    model.cache.table.insert(tf.constant(["dab"]), tf.constant([planted], tf.int64))
    assert segment(model, ["dab", "bcd"])[0] == [7, 3, 2]


def test_the_cache_stops_at_its_capacity_and_later_words_are_still_segmented():
    model, reference = tie_model(capacity=3)
    words = ["abcddd", "aé", "cdab", "dab", "bcd", "abab"]
    assert segment(model, words) == reference_ids(reference, words)
    assert int(model.cache.table.size()) == 3 and sum(cached(model, words)) == 3
    later = words[::-1] + ["dcba", "cab"]
    assert segment(model, later) == reference_ids(reference, later)
    assert int(model.cache.table.size()) == 3 and sum(cached(model, later)) == 3


def test_words_with_more_tokens_than_a_row_or_too_many_bytes_are_not_cached():
    model, reference = tie_model()
    many_tokens = "x" + "ab" * ROW_WIDTH  # an unknown x, then ROW_WIDTH pieces
    long_bytes = "abc" * 90  # 270 bytes in few pieces
    words = [many_tokens, long_bytes, "abcdab"]
    for _ in range(2):
        assert segment(model, words) == reference_ids(reference, words)
    assert cached(model, words) == [False, False, True]


def test_words_cut_under_a_token_limit_are_not_cached():
    """Right truncation segments a long word's first characters only (`early_stop`): those
    tokens must not answer a later call that keeps the whole word."""
    model, reference = tie_model()
    words = ["abcd" * 40, "dab"]
    limited = model(
        tf.ragged.constant([[ord(c) for c in w] for w in words], tf.int32), token_limit=2
    ).to_list()
    assert len(limited[0]) < len(reference_ids(reference, words[:1])[0])
    assert cached(model, words) == [False, True]
    assert segment(model, words) == reference_ids(reference, words)


def test_a_layer_answers_repeated_texts_as_hf():
    path = trained("Unigram-Metaspace")
    hf = PreTrainedTokenizerFast.from_pretrained(path)
    texts = ["the cat sat on the mat", "a longer sentence about the cat, sat again", ""]
    options = {"padding": "longest", "truncation": True, "max_length": 6}
    layer = LayerRunner(TokenizerLayer.from_pretrained(path, **options))
    for _ in range(2):
        check_parity(layer, hf, texts, **options)


def test_threads_filling_one_cache_get_single_threaded_results():
    model, reference = tie_model()
    pieces = [token for token, _ in tie_component()["vocab"]]
    words = [a + b + c for a in pieces for b in pieces[3:9] for c in ("d", "▁", "é")]
    expected = reference_ids(reference, words)
    rows = tf.ragged.constant([[ord(c) for c in w] for w in words], tf.int32)
    results, errors = [], []

    def run(shift: int) -> None:
        try:
            for turn in range(4):
                order = [(i * (shift + turn + 1)) % len(words) for i in range(len(words))]
                out = model(tf.gather(rows, order)).to_list()
                results.append([out[k] == expected[i] for k, i in enumerate(order)])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(shift,)) for shift in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 16
    assert all(all(row) for row in results)


@pytest.mark.slow
@pytest.mark.parametrize("extras", [ANNOTATED, OFFSETS], ids=["ids", "offsets"])
def test_exports_start_with_an_empty_cache_and_serve_what_hf_returns(
    extras, hf_tokenizer, tmp_path
):
    """export() reloads the SavedModel in a TensorFlow-only process (TF1 `serve` loader) and
    runs both signatures on the same texts: the second finds the first's words cached. (By
    default, the albert-base-v2 export of test_sentencepiece_pipelines covers this.)"""
    path = trained("Unigram-Metaspace")
    served, want = served_and_expected(path, extras, hf_tokenizer(path), tmp_path)
    assert served == want
    assert_holds_no_tables(next(tmp_path.rglob("variables")).parent)
