"""Recipes of the WordPiece tokenizers test_wordpiece_parity.py trains: one Variant per
normalizer, pre-tokenizer, post-processor or added-token setup under test, and how each is
trained and wrapped as a checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from texts import SPECIAL_TOKENS
from tokenizers import (
    AddedToken,
    Tokenizer,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_CONFIG = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                   mask_token="[MASK]")


@dataclass(frozen=True)
class Variant:
    """A WordPiece tokenizer to train and wrap as a checkpoint folder."""

    normalizer: object = None
    pre_tokenizer: object = None
    post: str = "bert-template"
    added: tuple[AddedToken, ...] = ()
    added_special: tuple[AddedToken, ...] = ()
    tokenizer_class: str = "PreTrainedTokenizerFast"
    config: dict = field(default_factory=dict)


def bert_normalizer(lowercase=True, strip_accents=None, handle_chinese_chars=True,
                    clean_text=True) -> Variant:
    """BertNormalizer with a BertTokenizer config that agrees with it (so HF keeps it)."""
    return Variant(
        normalizer=normalizers.BertNormalizer(
            clean_text=clean_text, handle_chinese_chars=handle_chinese_chars,
            strip_accents=strip_accents, lowercase=lowercase,
        ),
        tokenizer_class="BertTokenizer",
        config=dict(do_lower_case=lowercase, strip_accents=strip_accents,
                    tokenize_chinese_chars=handle_chinese_chars),
    )


def with_bert_pre(pre_tokenizer) -> Variant:
    return Variant(normalizers.BertNormalizer(lowercase=True), pre_tokenizer)


def with_post(post: str) -> Variant:
    return Variant(normalizers.BertNormalizer(lowercase=True), post=post)


def with_added(*added: AddedToken, special: tuple[AddedToken, ...] = ()) -> Variant:
    return Variant(normalizers.BertNormalizer(lowercase=True), added=added, added_special=special)


VARIANTS = {
    # normalizers
    "BertNormalizer-cased": bert_normalizer(lowercase=False),
    "BertNormalizer-uncased-strip_accents=None": bert_normalizer(),
    "BertNormalizer-uncased-strip_accents=True": bert_normalizer(strip_accents=True),
    "BertNormalizer-uncased-strip_accents=False": bert_normalizer(strip_accents=False),
    "BertNormalizer-cased-strip_accents=True": bert_normalizer(lowercase=False, strip_accents=True),
    "BertNormalizer-handle_chinese_chars=False": bert_normalizer(handle_chinese_chars=False),
    "BertNormalizer-clean_text=False": bert_normalizer(clean_text=False),
    "Sequence[NFD,Lowercase,StripAccents]": Variant(normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])),
    "NFKC": Variant(normalizers.NFKC()),
    "NFKD": Variant(normalizers.NFKD()),
    "no-normalizer": Variant(),
    # pre-tokenizers
    "Whitespace": with_bert_pre(pre_tokenizers.Whitespace()),
    "WhitespaceSplit": with_bert_pre(pre_tokenizers.WhitespaceSplit()),
    "Sequence[WhitespaceSplit,Punctuation]": with_bert_pre(pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])),
    "Sequence[BertPreTokenizer,Digits(individual)]": with_bert_pre(pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Digits(individual_digits=True)])),
    "Sequence[BertPreTokenizer,Digits(grouped)]": with_bert_pre(pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Digits(individual_digits=False)])),
    # post-processors
    "BertProcessing": with_post("bert-processing"),
    "TemplateProcessing-double-sep": with_post("template-double-sep"),
    "TemplateProcessing-pair-b-first": with_post("template-b-first"),
    "no-post_processor": with_post("none"),
    "RobertaProcessing-MPNet": Variant(
        normalizers.BertNormalizer(lowercase=True), post="roberta",
        tokenizer_class="MPNetTokenizer", config=dict(do_lower_case=True)),
    # added tokens
    "AddedToken-normalized/not-normalized": with_added(
        AddedToken("HelloWorld", normalized=True), AddedToken("ünï", normalized=True),
        AddedToken("<Ent>", normalized=False), AddedToken("ÜNÏ", normalized=False)),
    "AddedToken-lstrip/rstrip": with_added(AddedToken("<ls>", lstrip=True, normalized=False),
                                          AddedToken("<rs>", rstrip=True, normalized=False)),
    "AddedToken-single_word": with_added(AddedToken("tok", single_word=True, normalized=False),
                                        AddedToken("ing", single_word=True, normalized=True)),
    "AddedToken-overlapping-multiword": with_added(
        AddedToken("new york", normalized=True), AddedToken("new", normalized=False),
        AddedToken("東京", normalized=True), AddedToken("ab", normalized=False),
        AddedToken("abc", normalized=False)),
    "add_special_tokens": with_added(special=(AddedToken("<special>"), AddedToken("[E1]"),
                                              AddedToken("[/E1]", lstrip=True, rstrip=True))),
    # transformers' BertTokenizerFast rewrites the normalizer from tokenizer_config.json
    "BertTokenizer-config-overrides-normalizer": Variant(
        normalizers.BertNormalizer(lowercase=False), tokenizer_class="BertTokenizer",
        config=dict(do_lower_case=True, strip_accents=True)),
}


def post_processor(kind: str, tok: Tokenizer):
    cls, sep = ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))
    if kind == "bert-template":
        return processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[cls, sep])
    if kind == "bert-processing":
        return processors.BertProcessing(sep, cls)
    if kind == "template-double-sep":
        return processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] [SEP]:1 $B:1 [SEP]:1",
            special_tokens=[cls, sep])
    if kind == "template-b-first":
        return processors.TemplateProcessing(
            single="$A [SEP]", pair="[CLS]:1 $B:1 [SEP]:1 $A [SEP]", special_tokens=[cls, sep])
    if kind == "roberta":
        return processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                            ("<s>", tok.token_to_id("<s>")))
    assert kind == "none"
    return None


def injected_strings(variant: Variant) -> tuple[str, ...]:
    """Special and added token strings, with case variants, to splice into test texts."""
    contents = [t.content for t in variant.added + variant.added_special]
    contents += ["<s>", "</s>", "<mask>", "<pad>", "<unk>"] if variant.post == "roberta" else []
    contents += [c.upper() for c in contents] + [c.lower() for c in contents]
    return tuple(dict.fromkeys(contents + list(SPECIAL_TOKENS)))


def train(variant: Variant, corpus: list[str]) -> tuple[Tokenizer, dict]:
    """A small WordPiece vocabulary trained for ``variant``, and its tokenizer_config.json."""
    roberta = variant.post == "roberta"
    specials = (["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True, special=True)]
                if roberta else BERT_SPECIALS)
    tok = Tokenizer(models.WordPiece(unk_token="<unk>" if roberta else "[UNK]",
                                     max_input_chars_per_word=100))
    if variant.normalizer is not None:
        tok.normalizer = variant.normalizer
    tok.pre_tokenizer = variant.pre_tokenizer or pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=4000, limit_alphabet=1000,
                                        special_tokens=specials)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = post_processor(variant.post, tok)
    tok.add_tokens(list(variant.added))
    tok.add_special_tokens(list(variant.added_special))
    if roberta:
        names = dict(bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
                     unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    else:
        names = BERT_CONFIG
    config = dict(model_max_length=128, tokenizer_class=variant.tokenizer_class, **names,
                  **variant.config)
    return tok, config
