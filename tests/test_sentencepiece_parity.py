"""SentencePiece-family parity: Unigram and SentencePiece-style BPE, Precompiled, Metaspace."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parity import (
    LayerRunner,
    assert_same_encoding,
    check_parity,
    graph_constant_bytes,
    shifted,
)
from samples import FULL, examples, sample, slow_among, slow_beyond
from sentencepiece_checkpoints import SPIECE_INJECT, VARIANTS, trained
from texts import (
    COMBINING_DIACRITICS,
    EMOJI,
    WHITESPACE,
    ZERO_WIDTH,
    generate_texts,
    hand_written_count,
)
from tokenizers import Tokenizer

SHARED_SENTENCEPIECE = (
    "albert-base-v2",
    "t5-small",
    "deberta-v3-small",
    "llama-2",
    "hf-fixture-test-sentencepiece",
    "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos",
)
# Every n-th course text (every 12th in a full run, every 36th by default). llama-2 has no
# pre-tokenizer, so each text is one BPE word: far slower per text, so half as many.
DEFAULT_STRIDE = 12 if FULL else 36
CORPUS_STRIDE = {"llama-2": 2 * DEFAULT_STRIDE}


# --- Real checkpoints on the course corpus --------------------------------------------------------

@pytest.mark.parametrize("name", SHARED_SENTENCEPIECE)
def test_shared_checkpoint_matches_on_course_corpus(
    name, shared_dir, corpus, tokenizer_layer, hf_tokenizer
):
    path = shared_dir / "tokenizers" / name
    texts = corpus[:: CORPUS_STRIDE.get(name, DEFAULT_STRIDE)]
    layer, hf = tokenizer_layer(path, padding=False, truncation=False), hf_tokenizer(path)
    check_parity(layer, hf, texts, truncation=False)
    part = texts[: len(texts) // 4]
    padding = "longest" if hf.pad_token is not None else False
    padded = tokenizer_layer(path, padding=padding)
    check_parity(padded, hf, part, shifted(part, 11), padding=padding, truncation=True)


def test_layer_built_from_file_text_reads_scores_as_tokenizers_does(
    shared_dir, corpus, hf_tokenizer
):
    """t5-small's tokenizer.json writes scores with 17 digits, which tokenizers reads up to
    one ulp away from Python's reading. Built from the file's own text (not the text
    from_pretrained gets back from tokenizers), the layer still compiles the scores
    tokenizers holds, and matches HF where those ulps decide: long runs of one character."""
    from tfpipe import TokenizerLayer
    from tfpipe.tokenization.checkpoint import load_reference

    path = shared_dir / "tokenizers" / "t5-small"
    raw = (path / "tokenizer.json").read_text(encoding="utf-8")
    _, config = load_reference(path)
    layer = TokenizerLayer(raw, config, padding=False, truncation=False)
    held = json.loads(Tokenizer.from_str(raw).to_str())["model"]["vocab"]
    assert layer.pipeline.model.lattice.scores.numpy().tolist() == [score for _, score in held]
    runs = [text for text in corpus if "-----" in text or " " * 8 in text]
    check_parity(LayerRunner(layer), hf_tokenizer(path), runs, truncation=False)


def test_layer_refuses_a_score_tokenizers_cannot_read(shared_dir):
    """Python's json reads NaN; tokenizers (strict JSON) refuses the file, so does the layer."""
    from tfpipe import TokenizerLayer
    from tfpipe.tokenization.checkpoint import load_reference

    path = shared_dir / "tokenizers" / "t5-small"
    document = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    document["model"]["vocab"][5][1] = float("nan")
    _, config = load_reference(path)
    with pytest.raises(ValueError, match="cannot be read by tokenizers"):
        TokenizerLayer(json.dumps(document), config)


@pytest.mark.parametrize("name", ["t5-small", "llama-2"])
def test_shared_checkpoint_left_padding_and_truncation_match(
    name, shared_dir, corpus, tokenizer_layer, hf_tokenizer, tmp_path
):
    """padding_side/truncation_side left from tokenizer_config.json, max_length padding."""
    source = shared_dir / "tokenizers" / name
    folder = tmp_path / name
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.update(
        padding_side="left", truncation_side="left", pad_token=config.get("pad_token") or "</s>"
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    texts = corpus[:: 4 * CORPUS_STRIDE.get(name, DEFAULT_STRIDE)]
    layer = tokenizer_layer(folder, padding="max_length", max_length=48)
    check_parity(
        layer, hf_tokenizer(folder), texts, padding="max_length", truncation=True, max_length=48
    )


def _with_metaspace_first(component: dict) -> dict:
    if component["type"] == "Metaspace":
        return {**component, "prepend_scheme": "first"}
    if component["type"] == "Sequence":
        children = [_with_metaspace_first(c) for c in component["pretokenizers"]]
        return {**component, "pretokenizers": children}
    return component


@pytest.mark.parametrize("name", slow_beyond(["albert-base-v2", "t5-small"], ["albert-base-v2"]))
def test_shared_checkpoint_with_metaspace_first_matches(
    name, shared_dir, corpus, tokenizer_layer, hf_tokenizer, tmp_path
):
    """Real Precompiled charsmaps (leading removed characters keep offset 0), as transformers'
    legacy=False conversion writes them."""
    source = shared_dir / "tokenizers" / name
    document = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    document["pre_tokenizer"] = _with_metaspace_first(document["pre_tokenizer"])
    folder = tmp_path / name
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "tokenizer_config.json").write_bytes((source / "tokenizer_config.json").read_bytes())
    specials = ["[CLS]", "[MASK]", "<unk>", "</s>", "<pad>"]
    texts = FIRST_PIECE_TEXTS + [s + t for s in specials for t in ("x", " x")]
    texts += [f"{c}{t}" for c in "\x01\u200b\u00ad\ufeff" for t in ("ﬁne", "½\x01x", " y")]
    texts += corpus[:: 4 * DEFAULT_STRIDE]
    hf = hf_tokenizer(folder)
    layer = tokenizer_layer(folder, padding="longest", max_length=40)
    check_parity(layer, hf, texts, padding="longest", truncation=True, max_length=40)
    check_parity(layer, hf, texts, shifted(texts, 5), padding="longest", truncation=True,
                 max_length=40)


def test_precompiled_tables_stay_small(shared_dir, tokenizer_layer):
    """Precompiled's per-code-point map holds offsets to its outputs, so blocks are shared:
    t5-small's tokenizer graph had 13.3 MiB of constants with absolute outputs, 0.7 now."""
    layer = tokenizer_layer(shared_dir / "tokenizers" / "t5-small").layer
    assert graph_constant_bytes(layer) < 3 * 2**20


# --- Hypothesis: random Unicode through Precompiled + Unigram (t5-small) -------------------------

TEXTS = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.sampled_from(WHITESPACE + ZERO_WIDTH + "ab.\r\n▁"), max_size=30),
    st.text(st.sampled_from("aeAEｚＡⅣﬁ…\u00ad\u0600\u3000가" + COMBINING_DIACRITICS), max_size=20),
    st.lists(
        st.sampled_from(EMOJI + ("a", " ", "\u200d", "\U0001f3fd", "</s>", "<unk>")), max_size=10
    ).map("".join),
)


@settings(max_examples=examples(40, 150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
def test_random_unicode_matches_on_t5(shared_dir, tokenizer_layer, hf_tokenizer, texts):
    path = shared_dir / "tokenizers" / "t5-small"
    layer, hf = tokenizer_layer(path), hf_tokenizer(path)
    assert_same_encoding(
        layer(texts),
        hf(texts, padding="longest", truncation=True),
        texts,
        tokens=hf.convert_ids_to_tokens,
    )


# --- Tokenizers trained at test time -------------------------------------------------------------


# Where Metaspace `first` decides: the start of each text and what may precede its first piece.
FIRST_PIECE_TEXTS = [
    "", " ", "hello world", " hello", "  hello  world ", "\thello", "\u3000hello",
    "<s>hello", "<s> hello", "hello<s>world", "</s>", "<s><s>x", "▁hello", "▁▁x", "▁ x",
    "``quoted'' text", "''x", "`x", "xylophone", "x", "½ cup", "ﬁne", "ﬁ", "①②", "12 apples",
    "3", "!hello", "...", "\u200bhello", "\x01hello", "\u0301\u0323x", "e\u0301\u0323x",
    "İstanbul", "~x", "~~", "~ hello", "fine", " fi", "hello there", "hello", "héllo",
    "\ufb01 x", "~fi~hello", "x~",
]


@pytest.fixture(scope="module")
def variant_texts() -> list[str]:
    texts = generate_texts(800, seed=13, inject=SPIECE_INJECT)
    return FIRST_PIECE_TEXTS + sample(texts, 150, keep_first=hand_written_count(SPIECE_INJECT))


# Variants whose every component and option another default variant also has: in make
# test-full only (plain Metaspace, Metaspace first, split=False, NFKC + Lowercase +
# WhitespaceSplit each run in a richer variant; albert-base-v2 and the trained ALBERT
# pipeline have the albert normalizer with WhitespaceSplit + Metaspace first).
COVERED_VARIANTS = (
    "Unigram-Metaspace",
    "Unigram-Metaspace-first",
    "Unigram-Metaspace-split=False",
    "Unigram-WhitespaceSplit+Metaspace-NFKC-Lowercase",
    "Unigram-WhitespaceSplit+Metaspace-first-albert-normalizer",
)


@pytest.mark.parametrize("name", slow_among(list(VARIANTS), COVERED_VARIANTS))
def test_trained_variant_matches(name, variant_texts, hf_tokenizer):
    from tfpipe import TokenizerLayer

    folder = trained(name)
    hf = hf_tokenizer(folder)
    # The pair check below encodes every text too; the unpadded ragged output of a
    # SentencePiece layer is checked on the shared checkpoints (a layer build costs seconds).
    if FULL:
        check_parity(
            LayerRunner(TokenizerLayer.from_pretrained(str(folder), padding=False,
                                                       truncation=False)),
            hf,
            variant_texts,
            truncation=False,
        )
    runner = LayerRunner(TokenizerLayer.from_pretrained(str(folder)))
    check_parity(
        runner, hf, variant_texts, shifted(variant_texts, 3), padding="longest", truncation=True
    )


# --- What is not compiled fails at build time ----------------------------------------------------


@pytest.mark.parametrize(
    "component",
    [
        {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "once"}},
        {"normalizer": {"type": "Replace", "pattern": {"Regex": "(?<=a)b"}, "content": "c"}},
    ],
    ids=["Metaspace-unknown-prepend_scheme", "Replace-lookbehind"],
)
def test_unsupported_sentencepiece_components_fail_at_build(component):
    from tfpipe.tokenization import UnsupportedComponentError
    from tfpipe.tokenization.pipeline import TokenizationPipeline

    document = {
        "version": "1.0",
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "Unigram",
            "unk_id": 0,
            "vocab": [["<unk>", 0.0], ["a", -1.0]],
            "byte_fallback": False,
        },
        **component,
    }
    with pytest.raises(UnsupportedComponentError):
        TokenizationPipeline(document)


def test_metaspace_first_refuses_precompiled_keys_expanding_to_three_characters(
    shared_dir, tmp_path
):
    """tokenizers aligns such outputs per key character; tfpipe tracks lengths per character."""
    from tfpipe.tokenization import UnsupportedComponentError
    from tfpipe.tokenization.anchoring import check_trackable
    from tfpipe.tokenization.pipeline import TokenizationPipeline

    document = json.loads((shared_dir / "tokenizers" / "t5-small" / "tokenizer.json").read_text())
    document["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}
    precompiled = TokenizationPipeline(document).normalizer.stages[0]
    check_trackable([precompiled])
    precompiled.max_whole_replacement = 3
    with pytest.raises(UnsupportedComponentError, match="three or more"):
        check_trackable([precompiled])
