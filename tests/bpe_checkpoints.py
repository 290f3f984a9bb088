"""Recipes of the BPE tokenizers test_bpe_parity.py trains: one Variant per model option or
component under test, and how each is trained and wrapped as a checkpoint folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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
from trained_tokenizers import CL100K, DEEPSEEK, O200K, QWEN2, byte_level_trainer, split_then_bytes

GPT2_EOS = "<|endoftext|>"
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "'")
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
ROBERTA_CONFIG = dict(bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
                      unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
GPT2_CONFIG = dict(bos_token=GPT2_EOS, eos_token=GPT2_EOS, unk_token=GPT2_EOS, pad_token=GPT2_EOS)
WORD_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
WORD_CONFIG = dict(unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")
BYTE_TOKENS = tuple(f"<0x{byte:02X}>" for byte in range(256))


@dataclass(frozen=True)
class Variant:
    """A BPE tokenizer to train and wrap as a checkpoint folder.

    ``style`` picks the specials and post-processor: "roberta" (RobertaProcessing, a
    ``<mask>`` with lstrip), "gpt2" (ByteLevel post-processor, ``<|endoftext|>``),
    "template" (TemplateProcessing) or "words" (no post-processor).
    """

    style: str = "roberta"
    pre_tokenizer: object = None
    normalizer: object = None
    model: dict = field(default_factory=dict)
    limit_alphabet: int = 1000
    byte_fallback_vocab: bool = False
    added: tuple[AddedToken, ...] = ()
    added_special: tuple[AddedToken, ...] = ()
    tokenizer_class: str = "PreTrainedTokenizerFast"
    config: dict = field(default_factory=dict)


def byte_level(add_prefix_space=False, use_regex=True):
    return pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=use_regex)


def roberta(add_prefix_space: bool, config_add_prefix_space: bool | None = None) -> Variant:
    """RobertaTokenizer config: transformers rewrites the pre-tokenizer and post-processor
    from its ``add_prefix_space``, so the config states it (or deliberately disagrees)."""
    if config_add_prefix_space is None:
        config_add_prefix_space = add_prefix_space
    return Variant(pre_tokenizer=byte_level(add_prefix_space), tokenizer_class="RobertaTokenizer",
                   config=dict(add_prefix_space=config_add_prefix_space))


def words(pre_tokenizer=None, **model) -> Variant:
    """Word-level BPE with an unknown token; a small alphabet leaves characters unknown."""
    return Variant(style="words", pre_tokenizer=pre_tokenizer or pre_tokenizers.Whitespace(),
                   model=dict(unk_token="<unk>", **model), limit_alphabet=150)


VARIANTS = {
    # byte-level
    "ByteLevel-roberta": roberta(add_prefix_space=False),
    "ByteLevel-roberta-add_prefix_space": roberta(add_prefix_space=True),
    "RobertaTokenizer-config-overrides-add_prefix_space": roberta(False, True),
    "ByteLevel-gpt2": Variant(style="gpt2", pre_tokenizer=byte_level(),
                              tokenizer_class="GPT2Tokenizer"),
    "ByteLevel-gpt2-add_prefix_space": Variant(
        style="gpt2", pre_tokenizer=byte_level(add_prefix_space=True),
        tokenizer_class="GPT2Tokenizer", config=dict(add_prefix_space=True)),
    "ByteLevel-use_regex=False": Variant(
        style="gpt2", pre_tokenizer=pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), byte_level(use_regex=False)])),
    "ByteLevel-TemplateProcessing": Variant(style="template", pre_tokenizer=byte_level()),
    "ByteLevel-NFKC-Lowercase": Variant(
        style="gpt2", pre_tokenizer=byte_level(),
        normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])),
    "ByteLevel-NFC-Replace-Strip": Variant(
        style="gpt2", pre_tokenizer=byte_level(),
        normalizer=normalizers.Sequence([
            normalizers.NFC(), normalizers.Replace("``", '"'), normalizers.Replace("''", '"'),
            normalizers.Strip()])),
    "ByteLevel-ignore_merges": Variant(style="gpt2", pre_tokenizer=byte_level(),
                                       model=dict(ignore_merges=True)),
    # regex Split pre-tokenizers
    "Split-Llama-3": Variant(style="template", pre_tokenizer=split_then_bytes(CL100K),
                             model=dict(ignore_merges=True)),
    "Split-Qwen2-NFC": Variant(style="gpt2", pre_tokenizer=split_then_bytes(QWEN2),
                               normalizer=normalizers.NFC()),
    "Split-o200k": Variant(style="gpt2", pre_tokenizer=split_then_bytes(O200K)),
    "Split-DeepSeek-sequence": Variant(
        style="gpt2",
        pre_tokenizer=split_then_bytes(r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
                                       DEEPSEEK)),
    "Split-behaviours-invert": words(pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", "removed"),
        pre_tokenizers.Split(Regex(r"[\p{L}\p{M}]+"), "merged_with_next", invert=True),
        pre_tokenizers.Split(Regex(r"\d"), "contiguous"),
        pre_tokenizers.Split(Regex(r"[.,]"), "merged_with_previous"),
    ])),
    # word-level pre-tokenizers
    "Whitespace-unk": words(),
    "Whitespace-unk-fuse_unk": words(fuse_unk=True),
    "WhitespaceSplit-unk": words(pre_tokenizers.WhitespaceSplit()),
    "Whitespace-no-unk": Variant(style="words", pre_tokenizer=pre_tokenizers.Whitespace(),
                                 limit_alphabet=150),
    "continuing_subword_prefix": words(continuing_subword_prefix="##", fuse_unk=True),
    "end_of_word_suffix-CLIP": Variant(
        style="words", pre_tokenizer=pre_tokenizers.Whitespace(),
        normalizer=normalizers.Sequence([
            normalizers.NFC(), normalizers.Replace("\t", " "), normalizers.Lowercase()]),
        model=dict(unk_token="<unk>", end_of_word_suffix="</w>"), limit_alphabet=150),
    "prefix-and-suffix": words(continuing_subword_prefix="##", end_of_word_suffix="</w>"),
    "byte_fallback": Variant(
        style="words", pre_tokenizer=pre_tokenizers.WhitespaceSplit(), limit_alphabet=150,
        model=dict(unk_token="<unk>", byte_fallback=True), byte_fallback_vocab=True),
    "byte_fallback-fuse_unk": Variant(
        style="words", pre_tokenizer=pre_tokenizers.Whitespace(), limit_alphabet=150,
        model=dict(unk_token="<unk>", byte_fallback=True, fuse_unk=True),
        byte_fallback_vocab=True),
    "ignore_merges": words(ignore_merges=True),
    # added tokens
    "AddedToken-normalized/not-normalized": Variant(
        style="gpt2", pre_tokenizer=byte_level(), normalizer=normalizers.Lowercase(),
        added=(AddedToken("HelloWorld", normalized=True), AddedToken("ünï", normalized=True),
               AddedToken("<Ent>", normalized=False), AddedToken("ÜNÏ", normalized=False))),
    "AddedToken-lstrip/rstrip/single_word": Variant(
        pre_tokenizer=byte_level(), tokenizer_class="RobertaTokenizer",
        added=(AddedToken("<ls>", lstrip=True, normalized=False),
               AddedToken("<rs>", rstrip=True, normalized=False),
               AddedToken("tok", single_word=True, normalized=False))),
    "AddedToken-special": Variant(
        style="gpt2", pre_tokenizer=byte_level(),
        added_special=(AddedToken("<|sep|>"), AddedToken("[E1]", normalized=True),
                       AddedToken("[/E1]", lstrip=True, rstrip=True))),
    "AddedToken-words": Variant(
        style="words", pre_tokenizer=pre_tokenizers.Whitespace(), limit_alphabet=150,
        model=dict(unk_token="<unk>"),
        added=(AddedToken("new york", normalized=True), AddedToken("<Ent>", normalized=False)),
        added_special=(AddedToken("<mask>", lstrip=True),)),
}


def specials(style: str) -> list:
    if style == "roberta":
        return [*ROBERTA_SPECIALS, AddedToken("<mask>", lstrip=True, special=True)]
    if style in ("gpt2", "template"):
        return [GPT2_EOS, "<pad>"]
    return list(WORD_SPECIALS)


def post_processor(style: str, tok: Tokenizer):
    if style == "roberta":
        return processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                            ("<s>", tok.token_to_id("<s>")))
    if style == "gpt2":
        return processors.ByteLevel(trim_offsets=True)
    if style == "template":
        eos = (GPT2_EOS, tok.token_to_id(GPT2_EOS))
        return processors.TemplateProcessing(
            single=f"{GPT2_EOS} $A", pair=f"{GPT2_EOS} $A {GPT2_EOS}:1 $B:1", special_tokens=[eos])
    return None


def tokenizer_config(variant: Variant, pad: bool) -> dict:
    names = {"roberta": ROBERTA_CONFIG, "gpt2": GPT2_CONFIG, "template": GPT2_CONFIG}.get(
        variant.style, WORD_CONFIG)
    config = dict(model_max_length=128, tokenizer_class=variant.tokenizer_class, **names,
                  **variant.config)
    if not pad:
        config["pad_token"] = None
    return config


def with_byte_tokens(tok: Tokenizer) -> Tokenizer:
    """All 256 ``<0xXX>`` tokens appended to the model vocabulary (not as added tokens)."""
    document = json.loads(tok.to_str())
    vocab = document["model"]["vocab"]
    for token in BYTE_TOKENS:
        vocab.setdefault(token, len(vocab))
    return Tokenizer.from_str(json.dumps(document))


def train_tokenizer(variant: Variant, corpus: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(**variant.model))
    tok.normalizer = variant.normalizer
    tok.pre_tokenizer = variant.pre_tokenizer
    is_byte_level = variant.style != "words"
    affixes = {key: variant.model[key] for key in ("continuing_subword_prefix",
                                                  "end_of_word_suffix") if key in variant.model}
    options = dict(limit_alphabet=variant.limit_alphabet, **affixes)
    trainer = (byte_level_trainer(3000, specials(variant.style), **options) if is_byte_level
               else trainers.BpeTrainer(vocab_size=3000, special_tokens=specials(variant.style),
                                        **options))
    tok.train_from_iterator(corpus, trainer)
    if is_byte_level:
        tok.decoder = decoders.ByteLevel()
    if variant.byte_fallback_vocab:
        tok = with_byte_tokens(tok)
    tok.post_processor = post_processor(variant.style, tok)
    tok.add_tokens(list(variant.added))
    tok.add_special_tokens(list(variant.added_special))
    return tok


def injected_strings(variant: Variant) -> tuple[str, ...]:
    """Special and added token strings, with case variants, to splice into test texts."""
    contents = [t.content for t in variant.added + variant.added_special]
    contents += [str(t) for t in specials(variant.style)] + ["<mask>", *CONTRACTIONS]
    contents += [c.upper() for c in contents] + [c.lower() for c in contents]
    return tuple(dict.fromkeys(contents))
