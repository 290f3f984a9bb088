"""SentencePiece-family parity: Unigram and SentencePiece-style BPE, Precompiled, Metaspace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parity import LayerRunner, assert_same_encoding, check_parity
from texts import COMBINING_DIACRITICS, EMOJI, WHITESPACE, ZERO_WIDTH, course_texts, generate_texts
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

SHARED_SENTENCEPIECE = (
    "albert-base-v2",
    "t5-small",
    "deberta-v3-small",
    "llama-2",
    "hf-fixture-test-sentencepiece",
    "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos",
)
# Every n-th course text (the whole corpus is checked by hand; tests stay within minutes).
# llama-2 has no pre-tokenizer, so each text is one BPE word: far slower per text.
CORPUS_STRIDE = {"llama-2": 24}
DEFAULT_STRIDE = 12
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<cls>", "<sep>", "<mask>"]
SPIECE_INJECT = ("<s>", "</s>", "<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "▁", "▁▁", "  ")


def shifted(texts: list[str], by: int = 1) -> list[str]:
    return texts[by:] + texts[:by]


# --- Real checkpoints on the course corpus --------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(shared_dir) -> list[str]:
    return course_texts(shared_dir)


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
    from tfpipe.tokenization.layer import load_reference

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
    from tfpipe.tokenization.layer import load_reference

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


@pytest.mark.parametrize("name", ["albert-base-v2", "t5-small"])
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


# --- Hypothesis: random Unicode through Precompiled + Unigram (t5-small) -------------------------

TEXTS = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.sampled_from(WHITESPACE + ZERO_WIDTH + "ab.\r\n▁"), max_size=30),
    st.text(st.sampled_from("aeAEｚＡⅣﬁ…\u00ad\u0600\u3000가" + COMBINING_DIACRITICS), max_size=20),
    st.lists(
        st.sampled_from(EMOJI + ("a", " ", "\u200d", "\U0001f3fd", "</s>", "<unk>")), max_size=10
    ).map("".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@dataclass(frozen=True)
class Variant:
    """A SentencePiece-style tokenizer to train and wrap as a checkpoint folder."""

    model: str = "unigram"
    normalizer: object = None
    pre_tokenizer: object = field(default_factory=lambda: pre_tokenizers.Metaspace())
    # llama-style: train with Metaspace, then encode with these (no pre-tokenizer).
    serve_normalizer: object = None
    byte_fallback: bool = False
    post: str = "eos"
    config: dict = field(default_factory=dict)
    # Added after training: normalized (not special) tokens, matched in the normalized text.
    added_tokens: tuple = ()


LLAMA_NORMALIZER = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])

def albert_style_normalizer() -> normalizers.Normalizer:
    """albert-base-v2's normalizer, as transformers' SentencePiece conversion writes it."""
    return normalizers.Sequence(
        [
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.StripAccents(),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )


VARIANTS = {
    "Unigram-Metaspace": Variant(),
    "Unigram-Metaspace-split=False": Variant(pre_tokenizer=pre_tokenizers.Metaspace(split=False)),
    "Unigram-Metaspace-never": Variant(
        pre_tokenizer=pre_tokenizers.Metaspace(prepend_scheme="never")
    ),
    "Unigram-WhitespaceSplit+Metaspace-NFKC-Lowercase": Variant(
        normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
        pre_tokenizer=pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()]
        ),
    ),
    "Unigram-Strip+Replace-regex": Variant(
        normalizer=normalizers.Sequence(
            [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), "▁")]
        )
    ),
    "Unigram-byte_fallback": Variant(byte_fallback=True),
    "Unigram-llama-normalizer-no-pre-tokenizer": Variant(serve_normalizer=LLAMA_NORMALIZER),
    "Unigram-xlnet-template-left-padding": Variant(post="xlnet", config=dict(padding_side="left")),
    "BPE-Metaspace-fuse_unk": Variant(model="bpe"),
    "Unigram-Metaspace-first": Variant(
        pre_tokenizer=pre_tokenizers.Metaspace(prepend_scheme="first")
    ),
    "BPE-Metaspace-first-split=False": Variant(
        model="bpe", pre_tokenizer=pre_tokenizers.Metaspace(prepend_scheme="first", split=False)
    ),
    "Unigram-WhitespaceSplit+Metaspace-first-albert-normalizer": Variant(
        normalizer=albert_style_normalizer(),
        pre_tokenizer=pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(prepend_scheme="first")]
        ),
    ),
    "Unigram-Strip+Prepend+NFKC-Digits+Punctuation+Metaspace-first": Variant(
        normalizer=normalizers.Sequence(
            [
                normalizers.Strip(),
                normalizers.Replace("x", "ks"),
                normalizers.Prepend("~"),
                normalizers.NFKC(),
            ]
        ),
        pre_tokenizer=pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.Punctuation(),
                pre_tokenizers.Metaspace(prepend_scheme="first"),
            ]
        ),
    ),
    "Unigram-Metaspace-first-normalized-added-tokens": Variant(
        normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Prepend("~~")]),
        pre_tokenizer=pre_tokenizers.Metaspace(prepend_scheme="first"),
        added_tokens=(
            AddedToken("~", normalized=True, rstrip=True),
            AddedToken("fi", normalized=True, lstrip=True),
            AddedToken("hello", normalized=True, single_word=True),
        ),
    ),
    "BPE-llama-byte_fallback": Variant(
        model="bpe", byte_fallback=True, serve_normalizer=LLAMA_NORMALIZER, post="bos"
    ),
}


def post_processor(kind: str, tok: Tokenizer):
    ids = {name: tok.token_to_id(name) for name in SPECIALS}
    if kind == "eos":
        return processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", ids["</s>"])]
        )
    if kind == "bos":
        return processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", ids["<s>"])]
        )
    assert kind == "xlnet"
    return processors.TemplateProcessing(
        single="$A <sep> <cls>",
        pair="$A <sep> $B:1 <sep>:1 <cls>:2",
        special_tokens=[("<sep>", ids["<sep>"]), ("<cls>", ids["<cls>"])],
    )


def _with_byte_tokens(tok: Tokenizer) -> Tokenizer:
    """The trained Unigram rebuilt with all 256 <0xXX> tokens and byte_fallback on."""
    model = json.loads(tok.to_str())["model"]
    vocab = [tuple(entry) for entry in model["vocab"]]
    lowest = min(score for _, score in vocab)
    vocab += [(f"<0x{b:02X}>", lowest - 1.0) for b in range(256)]
    rebuilt = Tokenizer(models.Unigram(vocab, unk_id=model["unk_id"], byte_fallback=True))
    rebuilt.normalizer, rebuilt.pre_tokenizer = tok.normalizer, tok.pre_tokenizer
    return rebuilt


def train_checkpoint(variant: Variant, corpus: list[str], folder: Path) -> Path:
    """Train a small vocabulary for ``variant`` and save it as a checkpoint folder."""
    if variant.model == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=3000, special_tokens=SPECIALS, unk_token="<unk>", max_piece_length=12
        )
    else:
        tok = Tokenizer(
            models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=variant.byte_fallback)
        )
        specials = SPECIALS + (
            [f"<0x{b:02X}>" for b in range(256)] if variant.byte_fallback else []
        )
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, limit_alphabet=300)
    if variant.normalizer is not None:
        tok.normalizer = variant.normalizer
    tok.pre_tokenizer = variant.pre_tokenizer
    tok.train_from_iterator(corpus, trainer)
    if variant.model == "unigram" and variant.byte_fallback:
        tok = _with_byte_tokens(tok)
    if variant.serve_normalizer is not None:
        tok.normalizer, tok.pre_tokenizer = variant.serve_normalizer, None
    tok.add_tokens(list(variant.added_tokens))
    tok.decoder = decoders.Metaspace()
    tok.post_processor = post_processor(variant.post, tok)
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = dict(
        model_max_length=64,
        tokenizer_class="PreTrainedTokenizerFast",
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<cls>",
        sep_token="<sep>",
        mask_token="<mask>",
        **variant.config,
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def training_corpus() -> list[str]:
    """Texts cut down to code points below U+0600 (the Unigram trainer keeps every character
    it sees); the test texts are not, so unknown characters are exercised too."""
    texts = generate_texts(3000, seed=7, inject=SPIECE_INJECT)
    return ["".join(c for c in text if ord(c) < 0x600) for text in texts]


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
    return FIRST_PIECE_TEXTS + generate_texts(800, seed=13, inject=SPIECE_INJECT)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_trained_variant_matches(name, training_corpus, variant_texts, tmp_path, hf_tokenizer):
    from tfpipe import TokenizerLayer

    folder = train_checkpoint(VARIANTS[name], training_corpus, tmp_path / "ckpt")
    hf = hf_tokenizer(folder)
    check_parity(
        LayerRunner(TokenizerLayer.from_pretrained(str(folder), padding=False, truncation=False)),
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
        {"normalizer": {"type": "Replace", "pattern": {"Regex": "a(?=b)"}, "content": "c"}},
    ],
    ids=["Metaspace-unknown-prepend_scheme", "Replace-lookahead"],
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
