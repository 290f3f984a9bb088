"""SentencePiece-style tokenizers trained at test time: Unigram and BPE variants, one per
component option under test, shared by the parity and long-word tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from texts import generate_texts
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
from trained_tokenizers import albert_style_normalizer, trained_checkpoint

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<cls>", "<sep>", "<mask>"]
SPIECE_INJECT = ("<s>", "</s>", "<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "▁", "▁▁", "  ")


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


def train(variant: Variant) -> tuple[Tokenizer, dict]:
    """A small vocabulary trained for ``variant``, and its tokenizer_config.json."""
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
    tok.train_from_iterator(training_texts(), trainer)
    if variant.model == "unigram" and variant.byte_fallback:
        tok = _with_byte_tokens(tok)
    if variant.serve_normalizer is not None:
        tok.normalizer, tok.pre_tokenizer = variant.serve_normalizer, None
    tok.add_tokens(list(variant.added_tokens))
    tok.decoder = decoders.Metaspace()
    tok.post_processor = post_processor(variant.post, tok)
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
    return tok, config


def training_texts() -> list[str]:
    """Texts cut down to code points below U+0600 (the Unigram trainer keeps every character
    it sees); the test texts are not, so unknown characters are exercised too."""
    texts = generate_texts(3000, seed=7, inject=SPIECE_INJECT)
    return ["".join(c for c in text if ord(c) < 0x600) for text in texts]


def trained(name: str) -> Path:
    """The checkpoint folder of ``VARIANTS[name]``, trained once and kept on disk."""
    return trained_checkpoint(f"sentencepiece {name}", lambda: train(VARIANTS[name]), __file__)
