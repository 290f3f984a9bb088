"""BPE parity: TokenizerLayer returns exactly what the HF fast tokenizer returns.

Real byte-level checkpoints (gpt2, roberta-base, gpt-neox-20b) run on the course corpus;
BPE tokenizers trained here with ``tokenizers`` cover the model options one by one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bpe_checkpoints
import pytest
import tensorflow as tf
from bpe_checkpoints import (
    BYTE_TOKENS,
    CONTRACTIONS,
    GPT2_EOS,
    VARIANTS,
    injected_strings,
    tokenizer_config,
    train_tokenizer,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parity import assert_same_encoding, check_parity, check_parity_where_hf_accepts, shifted
from samples import FULL, examples, sample, slow_among, slow_beyond
from texts import EMOJI, WHITESPACE, generate_texts, hand_written_count
from tokenizers import Tokenizer
from trained_tokenizers import (
    save_checkpoint,
    train_byte_level_then_splits,
    train_falcon_style,
    train_punctuation_byte_level_digits,
    train_punctuation_prefix_space_byte_level,
    trained_checkpoint,
)

from tfpipe import TokenizerLayer
from tfpipe.export.graph_audit import foreign_ops, graph_op_types
from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.models.bpe import GUARDED, _merge_table
from tfpipe.tokenization.pre_tokenizers.byte_level import byte_chars

SHARED_BPE = ["gpt2", "roberta-base", "gpt-neox-20b"]
MATRIX_TEXTS = 1000 if FULL else 400
BPE_EDGE_CASES = (
    "I'm", "it's", "IT'S", "we'll've", "don't 'S 'T", "x's's", "''", "'s", "rock'n'roll",
    "  leading", "trailing  ", "\t\ttabs\t", "a\u3000b", "a\xa0b", "a \xa0 b", "   ", "\n\n",
    "line\n  indented", "emoji 👍🏽 ok", "👨‍👩‍👧‍👦👨‍👩‍👧‍👦", "1234567 12 3.14", "x1y22z333",
    "Hello<mask>", " <mask>", "<mask>x", "a  <mask> b", "<s></s><pad><unk>",
    GPT2_EOS, f"a{GPT2_EOS}b", f" {GPT2_EOS} ", "naïve café", "ＡＢＣ ﬁ ①", "İstanbul ǅ",
)


# --- Real byte-level checkpoints on the course corpus -------------------------------------------


@pytest.fixture(scope="module")
def matrix_texts(corpus) -> list[str]:
    """A spread sample of the corpus plus BPE edge cases, for the config matrix."""
    step = len(corpus) // MATRIX_TEXTS
    return list(BPE_EDGE_CASES) + corpus[::step][:MATRIX_TEXTS]


@pytest.fixture(scope="module")
def padded_checkpoints(shared_dir, tmp_path_factory):
    """``padded_checkpoints(name)``: the shared folder, copied with ``pad_token`` set when it
    has none (gpt2, gpt-neox-20b pad with ``<|endoftext|>``, as their users do)."""
    cache = {}

    def get(name: str) -> Path:
        if name not in cache:
            source = shared_dir / "tokenizers" / name
            config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
            if config.get("pad_token"):
                cache[name] = source
            else:
                folder = tmp_path_factory.mktemp(f"{name}-padded")
                shutil.copy(source / "tokenizer.json", folder / "tokenizer.json")
                config["pad_token"] = GPT2_EOS
                (folder / "tokenizer_config.json").write_text(json.dumps(config))
                cache[name] = folder
        return cache[name]

    return get


@pytest.mark.parametrize("name", SHARED_BPE)
def test_shared_checkpoint_single_texts_match_on_course_corpus(
    name, shared_dir, corpus, tokenizer_layer, hf_tokenizer
):
    """Unpadded (ragged) output; gpt2 through a traced tf.function, as served."""
    path = shared_dir / "tokenizers" / name
    layer = tokenizer_layer(path, traced=name == "gpt2", padding=False)
    check_parity(layer, hf_tokenizer(path), sample(corpus, 3000), padding=False, truncation=True)


@pytest.mark.parametrize("name", SHARED_BPE)
def test_shared_checkpoint_pairs_match_with_longest_first_truncation(
    name, corpus, padded_checkpoints, tokenizer_layer, hf_tokenizer
):
    path = padded_checkpoints(name)
    texts = corpus[::8] if FULL else corpus[::32]
    layer = tokenizer_layer(path, max_length=64)
    check_parity(layer, hf_tokenizer(path), texts, shifted(texts, 11), padding="longest",
                 truncation="longest_first", max_length=64)


@pytest.mark.parametrize(
    ("name", "padding", "max_length"),
    slow_beyond(
        [(name, padding, max_length) for name in ("gpt2", "roberta-base")
         for padding, max_length in [("longest", 8), ("longest", None), ("max_length", 16),
                                     ("max_length", 128), ("do_not_pad", 32)]],
        [("gpt2", "longest", 8), ("gpt2", "max_length", 128), ("roberta-base", "longest", None),
         ("roberta-base", "max_length", 16), ("roberta-base", "do_not_pad", 32)],
    ),
)
def test_shared_checkpoint_padding_and_max_length_match(
    name, padding, max_length, matrix_texts, padded_checkpoints, tokenizer_layer, hf_tokenizer
):
    path = padded_checkpoints(name)
    layer, hf = tokenizer_layer(path, padding=padding, max_length=max_length), hf_tokenizer(path)
    kwargs = dict(padding=padding, truncation=True, max_length=max_length)
    check_parity(layer, hf, matrix_texts, **kwargs)
    check_parity(layer, hf, matrix_texts[:300], shifted(matrix_texts[:300], 3), **kwargs)


@pytest.mark.parametrize(
    ("name", "truncation", "max_length"),
    slow_beyond(
        [(name, truncation, max_length) for name in ("gpt2", "roberta-base")
         for truncation in ("only_first", "only_second") for max_length in (8, 32)],
        [("gpt2", "only_first", 8), ("roberta-base", "only_second", 32)],
    ),
)
def test_shared_checkpoint_only_first_and_only_second_truncation_follow_hf(
    name, truncation, max_length, matrix_texts, padded_checkpoints, tokenizer_layer,
    hf_tokenizer,
):
    """Parity on every pair HF accepts; a batch holding a pair HF rejects raises in the layer."""
    path = padded_checkpoints(name)
    texts, pairs = matrix_texts[:800], shifted(matrix_texts[:800], 5)
    layer = tokenizer_layer(path, max_length=max_length, truncation=truncation)
    check_parity_where_hf_accepts(layer, hf_tokenizer(path), texts, pairs, refusals=True,
                                  padding="longest", truncation=truncation, max_length=max_length)


@pytest.mark.parametrize("truncation", ["only_first", "only_second"])
def test_shared_checkpoint_only_truncation_of_single_texts_follows_hf(
    truncation, matrix_texts, padded_checkpoints, tokenizer_layer, hf_tokenizer
):
    """only_first truncates single texts; only_second accepts only those that fit, as HF."""
    path = padded_checkpoints("roberta-base")
    layer, hf = tokenizer_layer(path, max_length=8, truncation=truncation), hf_tokenizer(path)
    check_parity_where_hf_accepts(
        layer, hf, matrix_texts, refusals=truncation == "only_second",
        padding="longest", truncation=truncation, max_length=8,
    )


@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_padding_gpt2_without_pad_token_raises_like_hf(shared_dir, hf_tokenizer, padding):
    path = shared_dir / "tokenizers" / "gpt2"
    with pytest.raises(ValueError, match="padding token"):
        hf_tokenizer(path)(["a", "bb"], padding=padding, max_length=8)
    with pytest.raises(ValueError, match="padding token"):
        TokenizerLayer.from_pretrained(str(path), padding=padding, max_length=8)


# --- Tokenizers trained at test time (recipes: bpe_checkpoints.py) --------------------------------

@pytest.fixture(scope="module")
def training_corpus() -> list[str]:
    return generate_texts(3000, seed=7)


@pytest.fixture(scope="module")
def trained(training_corpus):
    """``trained(name, pad=True)``: the checkpoint folder of ``VARIANTS[name]``, trained once
    (and kept on disk until this file changes)."""

    def get(name: str, pad: bool = True) -> Path:
        variant = VARIANTS[name]
        return trained_checkpoint(
            f"bpe {name} pad={pad}",
            lambda: (train_tokenizer(variant, training_corpus), tokenizer_config(variant, pad)),
            bpe_checkpoints.__file__,
        )

    return get


def test_trained_variants_have_the_model_options_they_test(trained):
    """Guards the fixtures: the saved tokenizer.json carries each option under test."""
    for name, expected in [
        ("byte_fallback", dict(byte_fallback=True, unk_token="<unk>")),
        ("ignore_merges", dict(ignore_merges=True)),
        ("Whitespace-unk-fuse_unk", dict(fuse_unk=True)),
        ("continuing_subword_prefix", dict(continuing_subword_prefix="##")),
        ("end_of_word_suffix-CLIP", dict(end_of_word_suffix="</w>")),
    ]:
        model = json.loads((trained(name) / "tokenizer.json").read_text())["model"]
        assert {key: model[key] for key in expected} == expected, name
    vocab = json.loads((trained("byte_fallback") / "tokenizer.json").read_text())["model"]["vocab"]
    assert set(BYTE_TOKENS) <= set(vocab)


# Variants whose every component and option a default variant or a shared checkpoint also
# has: in make test-full only (ByteLevel-roberta: its add_prefix_space twin and the padding
# tests below; ByteLevel-gpt2: gpt2 and its add_prefix_space twin; TemplateProcessing:
# Split-Llama-3; o200k: its course-corpus test below).
COVERED_VARIANTS = ("ByteLevel-roberta", "ByteLevel-gpt2", "ByteLevel-TemplateProcessing",
                    "Split-o200k")


@pytest.mark.parametrize("name", slow_among(list(VARIANTS), COVERED_VARIANTS))
def test_trained_bpe_variant_matches(name, trained, tokenizer_layer, hf_tokenizer):
    folder = trained(name)
    try:
        runner = tokenizer_layer(folder)
    except UnsupportedComponentError as e:
        pytest.fail(f"{name} is not supported by TokenizerLayer yet: {e}")
    hf = hf_tokenizer(folder)
    inject = injected_strings(VARIANTS[name])
    texts = list(BPE_EDGE_CASES) + sample(generate_texts(800, seed=11, inject=inject), 250,
                                          keep_first=hand_written_count(inject))
    check_parity(runner, hf, texts, padding="longest", truncation=True)
    check_parity(runner, hf, texts[:400], shifted(texts[:400], 3), padding="longest",
                 truncation=True)


@pytest.mark.parametrize("name", slow_beyond(["Split-Llama-3", "Split-o200k"], ["Split-o200k"]))
def test_trained_split_pattern_matches_on_course_corpus(
    name, trained, tokenizer_layer, hf_tokenizer, corpus
):
    folder = trained(name)
    check_parity(tokenizer_layer(folder), hf_tokenizer(folder), sample(corpus, 3000),
                 padding="longest", truncation=True)


@pytest.mark.parametrize(
    ("padding", "max_length", "truncation"),
    [("max_length", 16, "longest_first"), ("do_not_pad", 24, "longest_first"),
     ("longest", 12, "only_first"), ("longest", 12, "only_second")],
)
def test_trained_byte_level_padding_and_truncation_match(
    padding, max_length, truncation, trained, tokenizer_layer, hf_tokenizer
):
    folder = trained("ByteLevel-roberta")
    layer = tokenizer_layer(folder, padding=padding, max_length=max_length, truncation=truncation)
    hf = hf_tokenizer(folder)
    texts = list(BPE_EDGE_CASES) + generate_texts(600, seed=13)
    kwargs = dict(padding=padding, truncation=truncation, max_length=max_length)
    check_parity_where_hf_accepts(layer, hf, texts, shifted(texts, 5), refusals=None, **kwargs)
    if truncation == "longest_first":
        check_parity(layer, hf, texts, **kwargs)


@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_padding_without_pad_token_raises_like_hf(trained, hf_tokenizer, padding):
    folder = trained("ByteLevel-gpt2", pad=False)
    with pytest.raises(ValueError, match="padding token"):
        hf_tokenizer(folder)(["a", "bb"], padding=padding, max_length=8)
    with pytest.raises(ValueError, match="padding token"):
        TokenizerLayer.from_pretrained(str(folder), padding=padding, max_length=8)


@pytest.mark.parametrize(("texts", "pairs"), [([""], None), (["", ""], None), (["<mask>"], None),
                                             (["word"], [""])])
def test_batch_without_words_with_add_prefix_space_matches(
    texts, pairs, trained, tokenizer_layer, hf_tokenizer
):
    folder = trained("ByteLevel-roberta-add_prefix_space")
    check_parity(tokenizer_layer(folder), hf_tokenizer(folder), texts, pairs, padding="longest",
                 truncation=True)


def test_unpadded_output_needs_no_pad_token(trained, tokenizer_layer, hf_tokenizer):
    folder = trained("ByteLevel-gpt2", pad=False)
    texts = list(BPE_EDGE_CASES)
    check_parity(tokenizer_layer(folder, padding=False), hf_tokenizer(folder), texts,
                 shifted(texts), padding=False, truncation=True)


@pytest.mark.parametrize("name", ["ByteLevel-roberta", "byte_fallback", "end_of_word_suffix-CLIP"])
def test_traced_bpe_graph_uses_only_stock_tensorflow_ops(name, trained, tokenizer_layer):
    layer = tokenizer_layer(trained(name)).layer

    def single(text):
        return layer(text)

    def pair(text, text_pair):
        return layer(text, text_pair=text_pair)

    spec = tf.TensorSpec([None], tf.string)
    for fn, specs in ((single, [spec]), (pair, [spec, spec])):
        ops = graph_op_types(tf.function(fn).get_concrete_function(*specs).graph.as_graph_def())
        assert ops, "empty graph"
        assert foreign_ops(ops) == set()


def test_byte_level_bpe_with_dropout_raises_at_build(trained, tmp_path):
    document = json.loads((trained("ByteLevel-roberta") / "tokenizer.json").read_text())
    document["model"]["dropout"] = 0.1
    config = json.loads((trained("ByteLevel-roberta") / "tokenizer_config.json").read_text())
    folder = save_checkpoint(Tokenizer.from_str(json.dumps(document)), config, tmp_path / "ckpt")
    with pytest.raises(UnsupportedComponentError, match="dropout"):
        TokenizerLayer.from_pretrained(str(folder))


# --- ByteLevel inside a pre-tokenizer Sequence (issue 19) ---------------------------------------

# Recipes in trained_tokenizers.py; falcon-7b's own pre-tokenizer by default, the rest in
# make test-full.
SEQUENCE_BYTE_LEVEL = {
    "falcon": train_falcon_style,
    "Punctuation-ByteLevel-Digits-Split": train_punctuation_byte_level_digits,
    "ByteLevel-add_prefix_space-in-the-middle": train_punctuation_prefix_space_byte_level,
    "ByteLevel-then-WhitespaceSplit-Split": train_byte_level_then_splits,
}
# Digits and punctuation after the byte-level alphabet: 'м' is D0 BC, the byte BC is '¼'.
BYTE_DIGIT_EDGE_CASES = (
    "12½3456", "½6789", "м and мир 999", "x²y ³ ¹", "٣٤٥ ①②③", "price: 12,345.67", " 999",
    "(555) 123-4567 ext. 89", "hello, world!! ...ok", "a  12", "trailing 12   ", "Ġ ĠĠ Ċ",
)


@pytest.fixture(scope="module")
def sequence_trained(training_corpus):
    """``sequence_trained(name)``: the checkpoint folder of ``SEQUENCE_BYTE_LEVEL[name]``."""

    def get(name: str) -> Path:
        train = SEQUENCE_BYTE_LEVEL[name]
        return trained_checkpoint(f"bpe sequence {name}", lambda: train(training_corpus),
                                  __file__)

    return get


@pytest.mark.parametrize("name", slow_beyond(list(SEQUENCE_BYTE_LEVEL), ["falcon"]))
def test_byte_level_inside_sequence_matches_on_course_corpus(
    name, sequence_trained, corpus, tokenizer_layer, hf_tokenizer
):
    folder = sequence_trained(name)
    layer, hf = tokenizer_layer(folder), hf_tokenizer(folder)
    texts = [*BYTE_DIGIT_EDGE_CASES, *BPE_EDGE_CASES, *sample(corpus, 3000)]
    check_parity(layer, hf, texts, padding="longest", truncation=True)
    check_parity(layer, hf, texts[:600], shifted(texts[:600], 7), padding="longest",
                 truncation=True)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  for n in SEQUENCE_BYTE_LEVEL])
@pytest.mark.parametrize("truncation", ["longest_first", "only_first", "only_second"])
def test_byte_level_inside_sequence_truncation_matches(
    name, truncation, sequence_trained, tokenizer_layer, hf_tokenizer
):
    folder = sequence_trained(name)
    layer, hf = tokenizer_layer(folder, max_length=16, truncation=truncation), hf_tokenizer(folder)
    texts = [*BYTE_DIGIT_EDGE_CASES, *BPE_EDGE_CASES, *generate_texts(600, seed=13)]
    kwargs = dict(padding="longest", truncation=truncation, max_length=16)
    check_parity_where_hf_accepts(layer, hf, texts, shifted(texts, 5), refusals=None, **kwargs)
    if truncation == "longest_first":
        check_parity(layer, hf, texts, **kwargs)


# --- Hypothesis: random Unicode, whitespace runs, contractions, emoji -----------------------------

BPE_WHITESPACE = " \t\n\r\u3000\xa0\u2009\x0b\x0c\x85\u2028"
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
TEXTS = st.one_of(
    ANY_TEXT,
    st.text(st.sampled_from(BPE_WHITESPACE + "ab'"), max_size=30),
    st.lists(st.sampled_from(CONTRACTIONS + ("I", "we", "don", "X", " ", "  ", "\n", "9")),
             max_size=12).map("".join),
    st.lists(st.sampled_from(EMOJI + ("a", " ", "\u200d", "\ufe0f", "\U0001f3fd", "!")),
             max_size=12).map("".join),
    st.lists(st.sampled_from(("<mask>", "<s>", GPT2_EOS, "<|sep|>", "<ls>", "tok", " ", "x",
                              "\n", "é", "new york")), max_size=10).map("".join),
    st.text(st.sampled_from("0123456789.,-_ aA" + WHITESPACE[:6]), max_size=30),
)
HYPOTHESIS = settings(max_examples=examples(25, 60), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
TEXT_BATCHES = st.lists(TEXTS, min_size=1, max_size=4)
PAIR_BATCHES = st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=4)
# A byte-level, an added-token, a word-level and a Split variant by default; all six in a
# full run.
HYPOTHESIS_VARIANTS = (["ByteLevel-roberta", "ByteLevel-roberta-add_prefix_space",
                        "AddedToken-special", "prefix-and-suffix", "Split-Llama-3", "Split-o200k"]
                       if FULL else ["ByteLevel-roberta-add_prefix_space", "AddedToken-special",
                                     "prefix-and-suffix", "Split-o200k"])


@pytest.fixture(scope="module")
def hypothesis_tokenizers(trained, tokenizer_layer, hf_tokenizer):
    """(traced LayerRunner with max_length=24, HF tokenizer) for some trained variants."""
    return [(tokenizer_layer(trained(name), traced=True, max_length=24),
             hf_tokenizer(trained(name)))
            for name in HYPOTHESIS_VARIANTS]


@HYPOTHESIS
@given(texts=TEXT_BATCHES)
def test_random_unicode_single_texts_match(hypothesis_tokenizers, texts):
    for layer, hf in hypothesis_tokenizers:
        expected = hf(texts, padding="longest", truncation=True, max_length=24)
        assert_same_encoding(layer(texts), expected, texts, tokens=hf.convert_ids_to_tokens)


@HYPOTHESIS
@given(pairs=PAIR_BATCHES)
def test_random_unicode_pairs_match_with_truncation(hypothesis_tokenizers, pairs):
    texts, partners = [a for a, _ in pairs], [b for _, b in pairs]
    for layer, hf in hypothesis_tokenizers:
        expected = hf(texts, partners, padding="longest", truncation=True, max_length=24)
        assert_same_encoding(layer(texts, partners), expected, texts, partners,
                             tokens=hf.convert_ids_to_tokens)


@pytest.fixture(scope="module")
def gpt2_layer(padded_checkpoints, tokenizer_layer, hf_tokenizer):
    path = padded_checkpoints("gpt2")
    return tokenizer_layer(path, traced=True, max_length=32), hf_tokenizer(path)


@HYPOTHESIS
@given(texts=TEXT_BATCHES)
def test_random_unicode_matches_gpt2(gpt2_layer, texts):
    layer, hf = gpt2_layer
    expected = hf(texts, padding="longest", truncation=True, max_length=32)
    assert_same_encoding(layer(texts), expected, texts, tokens=hf.convert_ids_to_tokens)


def test_byte_level_characters_are_gpt2_bytes_to_unicode():
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    expected = [ord(char) for _, char in sorted(bytes_to_unicode().items())]
    assert byte_chars(tf.range(256)).numpy().tolist() == expected


# a b -> ab, b c -> bc, ab c -> abc (ids 0-5); (b, c) is not guarded: (a, b) ranks first.
ORDERED_MERGES = {(0, 1): (0, 3), (1, 2): (1, 4), (3, 2): (2, 5)}


@pytest.mark.parametrize(
    ("pairs", "guarded"),
    [
        (ORDERED_MERGES, [True, False, True]),
        # ab c ranks before a b, which creates ab: the loop's premise fails, nothing is guarded.
        ({(0, 1): (1, 3), (3, 2): (0, 5)}, [False, False]),
    ],
)
def test_guarded_merges(pairs, guarded):
    _, values = _merge_table(pairs)
    assert ((values & GUARDED) != 0).tolist() == guarded
