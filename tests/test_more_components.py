"""The remaining component types of `tokenizers` (issue 19): ByteLevel and Nmt normalizers,
CharDelimiterSplit, FixedLength and UnicodeScripts pre-tokenizers, the WordLevel model.

Component-level parity on generated and course texts is in tests/test_components.py; here:
the tables on every code point, a WordLevel lacking its unknown token (the reference raises),
and trained tokenizers using them end to end against the HF fast tokenizer.
"""

from __future__ import annotations

import pytest
import tensorflow as tf
from parity import check_parity, check_parity_where_hf_accepts, shifted
from samples import slow_beyond
from test_regex import corpus_and_generated
from texts import generate_texts
from tokenizers import Tokenizer, models
from tokenizers import normalizers as hf_normalizers
from tokenizers import pre_tokenizers as hf_pre_tokenizers
from trained_tokenizers import (
    save_checkpoint,
    train_byte_level_normalizer,
    train_unicode_scripts,
    train_word_level,
    trained_checkpoint,
)

from tfpipe.tokenization.codepoint_tables import all_codepoints
from tfpipe.tokenization.normalizers import Normalizer
from tfpipe.tokenization.pre_tokenizers import PreTokenizer


def text_of_every_code_point(joiner: str = "") -> str:
    return joiner.join(map(chr, all_codepoints().tolist()))


@pytest.mark.parametrize("kind", slow_beyond(["ByteLevel", "Nmt"], ["ByteLevel"]))
def test_normalizer_maps_every_code_point_as_the_reference(kind):
    """ByteLevel's alphabet is derived from GPT-2's byte table, not probed: check it all."""
    text = text_of_every_code_point()
    cps = tf.strings.unicode_decode(tf.constant([text]), "UTF-8")
    got = tf.strings.unicode_encode(Normalizer({"type": kind})(cps), "UTF-8").numpy()[0]
    assert got.decode() == getattr(hf_normalizers, kind)().normalize_str(text)


def pre_tokenized_by_graph(component: dict, texts: list[str]) -> list[list[str]]:
    words, piece = PreTokenizer(component)(tf.strings.unicode_decode(tf.constant(texts), "UTF-8"))
    rows = tf.RaggedTensor.from_value_rowids(
        tf.strings.unicode_encode(words, "UTF-8"), tf.cast(piece, tf.int64), nrows=len(texts)
    )
    return [[w.decode() for w in row] for row in rows.to_list()]


@pytest.mark.parametrize("joiner", slow_beyond(["a", "", " "], ["a"]))
def test_unicode_scripts_split_every_code_point_as_the_reference(joiner):
    """Every code point after each other (runs of a script) and between Latin letters or
    spaces (each script and Any against a neighbour)."""
    text = text_of_every_code_point(joiner)
    expected = [w for w, _ in hf_pre_tokenizers.UnicodeScripts().pre_tokenize_str(text)]
    assert pre_tokenized_by_graph({"type": "UnicodeScripts"}, [text]) == [expected]


@pytest.fixture(scope="module")
def training_texts() -> list[str]:
    return generate_texts(3000, seed=191)


PAIR_CHARS = 150
RECIPES = {
    "word level": train_word_level,
    "unicode scripts": train_unicode_scripts,
    "byte-level normalizer": train_byte_level_normalizer,
}


@pytest.mark.parametrize("name", slow_beyond(list(RECIPES), ["word level"]))
def test_trained_tokenizer_matches_hf(name, training_texts, tokenizer_layer, hf_tokenizer):
    folder = trained_checkpoint(f"issue19 {name}",
                                lambda: RECIPES[name](training_texts), __file__)
    texts = corpus_and_generated(generate_texts(2000, seed=193))
    hf = hf_tokenizer(folder)
    check_parity(tokenizer_layer(folder), hf, texts, padding="longest", truncation=True)
    # HF's pair truncation builds every overflowing window of a pair, quadratic in its
    # tokens: on byte-level tokens, a batch of 300-character pairs takes 12 GB and 30 s.
    short = [text for text in texts if len(text) <= PAIR_CHARS]
    for mode in ("longest_first", "only_first", "only_second"):
        layer = tokenizer_layer(folder, truncation=mode, max_length=24)
        check_parity_where_hf_accepts(layer, hf, short, shifted(short, 7), refusals=None,
                                      padding="longest", truncation=mode, max_length=24)


def test_word_level_without_its_unk_token_fails_where_the_reference_does(
    tmp_path, tokenizer_layer, hf_tokenizer
):
    """Known words encode alike; a batch with an unknown word raises, as HF's encode does,
    also where right truncation would cut a long text before it."""
    tok = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[PAD]": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = hf_pre_tokenizers.WhitespaceSplit()
    folder = save_checkpoint(tok, {"tokenizer_class": "PreTrainedTokenizerFast",
                                   "pad_token": "[PAD]"}, tmp_path)
    layer, hf = tokenizer_layer(folder), hf_tokenizer(folder)
    check_parity(layer, hf, ["a b", " b  a a", ""], padding="longest")
    long_text = "a b " * 100 + "c"
    with pytest.raises(Exception, match="Missing \\[UNK\\] token"):
        hf([long_text], truncation=True, max_length=4)
    for runner, texts in ((layer, ["a b", "a c"]),
                          (tokenizer_layer(folder, truncation=True, max_length=4), [long_text])):
        with pytest.raises(tf.errors.InvalidArgumentError, match="Missing \\[UNK\\] token"):
            runner(texts)
