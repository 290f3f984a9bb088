"""Tokenizers trained at test time with ``tokenizers``: shared pieces and the disk cache.

A trained checkpoint is a folder HF and tfpipe both load (tokenizer.json and
tokenizer_config.json). Training takes a second or more per tokenizer and is the same from
run to run, so ``trained_checkpoint`` keeps each one on disk, keyed by a digest of the test
code that describes it (tests/disk_cache.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from disk_cache import cached_folder, code_digest
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

# Split patterns of real checkpoints: GPT-2's (inside its ByteLevel), then tiktoken-style
# ones (Llama-3 / cl100k, Qwen2, GPT-4o / o200k, DeepSeek-V3), with the `\s+(?!\S)`
# look-ahead RE2 cannot run directly.
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = CL100K.replace(r"\p{N}{1,3}", r"\p{N}")
O200K = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
         r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"
         r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}"
         r"| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
            r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TEXTS_MODULE = Path(__file__).with_name("texts.py")


def split_then_bytes(*patterns: str) -> pre_tokenizers.PreTokenizer:
    """Regex Splits, then ByteLevel without its own regex: the tiktoken-style pipeline."""
    splits = [pre_tokenizers.Split(Regex(p), "isolated") for p in patterns]
    return pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )


def byte_level_trainer(vocab_size: int, special_tokens: list, **options) -> trainers.BpeTrainer:
    """A BPE trainer whose alphabet holds all 256 ByteLevel characters."""
    return trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **options)


def train_llama_3_split(texts: list[str]) -> tuple[Tokenizer, dict]:
    """A Llama-3-style tokenizer: cl100k Split + ByteLevel, ignore_merges, a BOS template."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = split_then_bytes(CL100K)
    tok.train_from_iterator(texts, byte_level_trainer(4000, ["<|begin_of_text|>", "<pad>"]))
    tok.decoder = decoders.ByteLevel()
    bos = ("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B:1", special_tokens=[bos])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>",
              "bos_token": "<|begin_of_text|>", "model_max_length": 8192}
    return tok, config


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


def save_checkpoint(tok: Tokenizer, config: dict, folder: Path) -> Path:
    """tokenizer.json + tokenizer_config.json: a folder HF and tfpipe both load."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def trained_checkpoint(
    name: str, train: Callable[[], tuple[Tokenizer, dict]], described_in: str
) -> Path:
    """The checkpoint folder of ``train()`` (a tokenizer and its tokenizer_config.json),
    trained once and kept until ``described_in`` (the test module holding the recipe), this
    module or tests/texts.py (the training texts) change."""
    digest = code_digest(Path(described_in), Path(__file__), TEXTS_MODULE)
    return cached_folder("trained", name, digest,
                         lambda folder: save_checkpoint(*train(), folder))


# Issue 19: long added tokens

# The Llama / Mistral SentencePiece-BPE normalizer (no pre-tokenizer after it).
SPACE_RUN_NORMALIZER = normalizers.Sequence(
    [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
)
BYTE_FALLBACK_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def sentencepiece_bpe(texts: list[str], normalizer: normalizers.Normalizer) -> Tokenizer:
    """A small byte-fallback BPE trained with Metaspace, then served Llama-style: `normalizer`
    and no pre-tokenizer, a `<s>` template."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<unk>", "<s>", "</s>", *BYTE_FALLBACK_TOKENS]
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=specials, limit_alphabet=200)
    tok.train_from_iterator(texts, trainer)
    tok.normalizer, tok.pre_tokenizer = normalizer, None
    tok.decoder = decoders.Metaspace()
    bos = ("<s>", tok.token_to_id("<s>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[bos]
    )
    return tok


def sentencepiece_config(model_max_length: int = 64) -> dict:
    return dict(tokenizer_class="PreTrainedTokenizerFast", model_max_length=model_max_length,
                unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>")


def train_space_run_tokens(texts: list[str], longest: int = 31) -> tuple[Tokenizer, dict]:
    """The issue's checkpoint: a Llama-style SentencePiece BPE with every run of 1 to
    `longest` ▁ added as a normalized, non-special token (markdown tables' space runs)."""
    tok = sentencepiece_bpe(texts, SPACE_RUN_NORMALIZER)
    tok.add_tokens([AddedToken("▁" * n, normalized=True) for n in range(1, longest + 1)])
    return tok, sentencepiece_config()


def train_with_added_tokens(
    texts: list[str], tokens: list[AddedToken], normalizer: normalizers.Normalizer
) -> tuple[Tokenizer, dict]:
    """The same SentencePiece BPE with `normalizer` and `tokens` added (special ones as
    special tokens), for added-token matrices."""
    tok = sentencepiece_bpe(texts, normalizer)
    tok.add_tokens([token for token in tokens if not token.special])
    tok.add_special_tokens([token for token in tokens if token.special])
    return tok, sentencepiece_config()


# Issue 19: Oniguruma patterns

BERT_STYLE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_STYLE_CONFIG = dict(model_max_length=128, tokenizer_class="PreTrainedTokenizerFast",
                         unk_token="[UNK]", pad_token="[PAD]",
                         cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _bert_style_wordpiece(
    texts: list[str], normalizer: normalizers.Normalizer, pre_tokenizer: pre_tokenizers.PreTokenizer
) -> tuple[Tokenizer, dict]:
    """A small WordPiece with [CLS]/[SEP] templates, and its tokenizer_config.json."""
    from tokenizers import models, processors

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.WordPieceTrainer(vocab_size=3000, limit_alphabet=600,
                                        special_tokens=BERT_STYLE_SPECIALS)
    tok.train_from_iterator(texts, trainer)
    cls, sep = ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[cls, sep])
    return tok, dict(BERT_STYLE_CONFIG)


def train_whitespace_replace(texts: list[str]) -> tuple[Tokenizer, dict]:
    """WordPiece behind a popular checkpoint's normalizer: every Oniguruma `\\s+` run becomes
    one space (RE2's `\\s` alone would miss most Unicode spaces), then NFKC and lowercasing."""
    normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"\s+"), " "), normalizers.NFKC(), normalizers.Lowercase()]
    )
    return _bert_style_wordpiece(texts, normalizer, pre_tokenizers.BertPreTokenizer())


def train_boundary_split(texts: list[str]) -> tuple[Tokenizer, dict]:
    """WordPiece whose pre-tokenizer splits on Oniguruma word boundaries, Han characters and
    hexadecimal runs, after a Replace of `(?i)` URL-ish words using `\\b` and `\\h`."""
    normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"(?i)\bwww\.\S+|\b0x\h+\b"), "[MASK]"),
         normalizers.Replace(Regex(r"\s+"), " ")]
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(),
         pre_tokenizers.Split(Regex(r"\p{Han}|\h{2,}|\b"), "isolated")]
    )
    return _bert_style_wordpiece(texts, normalizer, pre_tokenizer)


# Issue 19: ByteLevel inside a Sequence

ENDOFTEXT = "<|endoftext|>"
DIGIT_TRIPLES = pre_tokenizers.Split(Regex("[0-9][0-9][0-9]"), "isolated")


def byte_level_bpe(
    pre_tokenizer: pre_tokenizers.PreTokenizer, texts: list[str]
) -> tuple[Tokenizer, dict]:
    """A byte-level BPE trained on ``texts`` through ``pre_tokenizer``, GPT-2's specials and
    post-processor, as a tokenizer and its tokenizer_config.json."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.train_from_iterator(texts, byte_level_trainer(3000, [ENDOFTEXT, "<pad>"]))
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    config = dict(model_max_length=512, tokenizer_class="PreTrainedTokenizerFast",
                  bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, unk_token=ENDOFTEXT,
                  pad_token=ENDOFTEXT)
    return tok, config


def train_falcon_style(texts: list[str]) -> tuple[Tokenizer, dict]:
    """tiiuae/falcon-7b's pre-tokenizer: Punctuation(contiguous) → ByteLevel (GPT-2 split, no
    prefix space) → Digits(runs) → Split(digit triples); the digit steps see byte-level
    characters."""
    return byte_level_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation("contiguous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        pre_tokenizers.Digits(individual_digits=False),
        DIGIT_TRIPLES,
    ]), texts)


def train_punctuation_byte_level_digits(texts: list[str]) -> tuple[Tokenizer, dict]:
    """Punctuation → ByteLevel without its regex → Digits(runs) → Split(digit triples)."""
    return byte_level_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation("isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        pre_tokenizers.Digits(individual_digits=False),
        DIGIT_TRIPLES,
    ]), texts)


def train_punctuation_prefix_space_byte_level(texts: list[str]) -> tuple[Tokenizer, dict]:
    """ByteLevel(add_prefix_space) in the middle: every piece Punctuation leaves gets a space."""
    return byte_level_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation("isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
        pre_tokenizers.Digits(individual_digits=True),
    ]), texts)


def train_byte_level_then_splits(texts: list[str]) -> tuple[Tokenizer, dict]:
    """ByteLevel first, then splits that see only byte-level characters: WhitespaceSplit
    (no byte-level character is whitespace) and a Split merging each Ġ (the space) with what
    follows."""
    return byte_level_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False),
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split("Ġ", "merged_with_next"),
    ]), texts)


# Issue 19: the remaining component types

ROBERTA_STYLE_CONFIG = dict(model_max_length=128, tokenizer_class="PreTrainedTokenizerFast",
                            bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>")


def _sentence_template(tok: Tokenizer, begin: str, end: str) -> processors.TemplateProcessing:
    """`begin $A end`, and `begin $A end end $B end` for pairs (RoBERTa's layout)."""
    specials = [(begin, tok.token_to_id(begin)), (end, tok.token_to_id(end))]
    return processors.TemplateProcessing(
        single=f"{begin} $A {end}", pair=f"{begin} $A {end} {end} $B:1 {end}:1",
        special_tokens=specials)


def train_word_level(texts: list[str]) -> tuple[Tokenizer, dict]:
    """WordLevel over Whitespace words, after the Nmt rules and lowercasing, with `_` as a
    CharDelimiterSplit delimiter (Whitespace alone keeps it inside words)."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.CharDelimiterSplit("_"), pre_tokenizers.Whitespace()])
    trainer = trainers.WordLevelTrainer(vocab_size=4000, special_tokens=BERT_STYLE_SPECIALS)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    return tok, dict(BERT_STYLE_CONFIG)


def train_unicode_scripts(texts: list[str]) -> tuple[Tokenizer, dict]:
    """A SentencePiece-style BPE whose words never cross a script change: UnicodeScripts,
    digits one by one, then Metaspace."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.UnicodeScripts(), pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.Metaspace(prepend_scheme="always")])
    trainer = trainers.BpeTrainer(vocab_size=2000, limit_alphabet=300,
                                  special_tokens=["<unk>", "<s>", "</s>", "<pad>"])
    tok.train_from_iterator(texts, trainer)
    tok.decoder = decoders.Metaspace()
    tok.post_processor = _sentence_template(tok, "<s>", "</s>")
    return tok, dict(ROBERTA_STYLE_CONFIG)


def train_byte_level_normalizer(texts: list[str]) -> tuple[Tokenizer, dict]:
    """Byte-level BPE with the byte-level alphabet as the normalizer: words start at each
    `Ġ` (a space's byte) and are cut into FixedLength chunks of 12."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.ByteLevel()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("Ġ", "merged_with_next"), pre_tokenizers.FixedLength(12)])
    tok.train_from_iterator(texts, byte_level_trainer(2000, ["<s>", "</s>", "<unk>", "<pad>"]))
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = _sentence_template(tok, "<s>", "</s>")
    return tok, dict(ROBERTA_STYLE_CONFIG)
