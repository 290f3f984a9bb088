"""Tiny TF checkpoints for the pipeline tests whose tokenizer is not MiniLM's: byte-level
BPE (RoBERTa, GPT-2, BART) and SentencePiece-style (ALBERT, DeBERTa v3), with a tokenizer
trained here or copied from a real checkpoint, and their exports.

Builders are memoised functions, as in model_fixtures.py, so the pipeline tests and the
older-runtime tests (test_old_runtime.py) share one build and one export of each.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from disk_cache import cached_folder, code_digest
from model_fixtures import (
    CLASSIFIER_LABELS,
    NLI_LABELS,
    SENTENCES,
    assert_matches_hf_flow,
    cached_export,
    hf_tokenizer,
)
from texts import generate_texts
from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    pre_tokenizers,
    processors,
    trainers,
)
from trained_tokenizers import TEXTS_MODULE, albert_style_normalizer, byte_level_trainer

EOS = "<|endoftext|>"
# Model styles whose tokenizer is another style's: BART's is RoBERTa's byte-level BPE.
TOKENIZER_STYLES = {"bart": "roberta"}
MAX_LENGTH = 64
ALBERT_SPECIALS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]


def train_byte_level(style: str) -> Tokenizer:
    """A byte-level BPE like roberta-base ("roberta") or gpt2 ("gpt2"), trained here."""
    if style == "roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True)]
    else:
        specials = [EOS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(generate_texts(2000, seed=5) + SENTENCES,
                            byte_level_trainer(1000, specials))
    if style == "roberta":
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


def tokenizer_config(style: str) -> dict:
    if style == "roberta":
        return dict(tokenizer_class="RobertaTokenizer", add_prefix_space=False, bos_token="<s>",
                    eos_token="</s>", cls_token="<s>", sep_token="</s>", unk_token="<unk>",
                    pad_token="<pad>", mask_token="<mask>", model_max_length=MAX_LENGTH)
    return dict(tokenizer_class="GPT2Tokenizer", bos_token=EOS, eos_token=EOS, unk_token=EOS,
                pad_token=EOS, model_max_length=MAX_LENGTH)


def write_tokenizer(style: str, folder: Path) -> None:
    train_byte_level(style).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(style)))


def model_config(style: str, labels: dict[int, str], vocab_size: int):
    from transformers import BartConfig, DebertaV2Config, GPT2Config, RobertaConfig

    label_options = dict(id2label=labels, label2id={label: i for i, label in labels.items()})
    if style == "bart":
        return BartConfig(
            vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=37,
            decoder_ffn_dim=37, max_position_embeddings=MAX_LENGTH, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, **label_options)
    if style == "deberta-v3":  # DeBERTa v3's attention: relative positions, both ways
        return DebertaV2Config(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=37, max_position_embeddings=MAX_LENGTH, relative_attention=True,
            pos_att_type=["p2c", "c2p"], position_buckets=256, max_relative_positions=-1,
            position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
            type_vocab_size=0, pooler_hidden_size=32, pad_token_id=0, **label_options)
    if style == "roberta":
        return RobertaConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=37, max_position_embeddings=MAX_LENGTH + 2, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, **label_options)
    return GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=2,
                      n_positions=MAX_LENGTH, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                      **label_options)


@functools.cache
def checkpoint(style: str, model_class_name: str, labels: tuple[tuple[int, str], ...],
               tokenizer_source: Path | None = None) -> Path:
    """A tiny randomly initialised TF model saved with its tokenizer: trained, or copied."""
    import tf_keras
    import transformers

    source = "trained" if tokenizer_source is None else tokenizer_source.name
    name = f"{model_class_name}-{labels[-1][1]}-{source}"

    def build(destination: Path) -> None:
        if tokenizer_source is None:
            write_tokenizer(TOKENIZER_STYLES.get(style, style), destination)
        else:
            shutil.copy(tokenizer_source / "tokenizer.json", destination / "tokenizer.json")
            config = json.loads((tokenizer_source / "tokenizer_config.json").read_text())
            config["model_max_length"] = MAX_LENGTH  # the tiny model's positions
            (destination / "tokenizer_config.json").write_text(json.dumps(config))
        vocab_size = len(hf_tokenizer(destination))
        tf_keras.utils.set_random_seed(0)
        model_class = getattr(transformers, model_class_name)
        model = model_class(model_config(style, dict(labels), vocab_size))
        model(model.dummy_inputs)
        model.save_pretrained(str(destination))

    return cached_folder("checkpoint", name, code_digest(Path(__file__), TEXTS_MODULE), build)


def roberta_classifier() -> Path:
    return checkpoint("roberta", "TFRobertaForSequenceClassification",
                      tuple(CLASSIFIER_LABELS.items()))


def roberta_nli() -> Path:
    return checkpoint("roberta", "TFRobertaForSequenceClassification", tuple(NLI_LABELS.items()))


def bart_nli() -> Path:
    """Shaped like facebook/bart-large-mnli, the usual zero-shot model."""
    return checkpoint("bart", "TFBartForSequenceClassification", tuple(NLI_LABELS.items()))


def deberta_v3_classifier(tokenizer_source: Path) -> Path:
    """A DeBERTa v3 classifier with a real DeBERTa v3 tokenizer (copied from the shared ones)."""
    return checkpoint("deberta-v3", "TFDebertaV2ForSequenceClassification",
                      tuple(CLASSIFIER_LABELS.items()), tokenizer_source)


def gpt2_classifier() -> Path:
    return checkpoint("gpt2", "TFGPT2ForSequenceClassification", tuple(CLASSIFIER_LABELS.items()))


def train_albert_style() -> Tokenizer:
    """A Unigram tokenizer shaped like albert-base-v2's (Metaspace `first`, as transformers'
    legacy=False conversion writes it), trained here."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = albert_style_normalizer()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(prepend_scheme="first")]
    )
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=1000, special_tokens=ALBERT_SPECIALS, unk_token="<unk>", max_piece_length=12
    )
    # Code points below U+0600 only: the trainer keeps every character it sees.
    corpus = ["".join(c for c in t if ord(c) < 0x600) for t in generate_texts(1500, seed=11)]
    tok.train_from_iterator(corpus + SENTENCES, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def albert_tokenizer_config() -> dict:
    return dict(
        tokenizer_class="AlbertTokenizer", do_lower_case=True, keep_accents=False,
        remove_space=True, bos_token="[CLS]", eos_token="[SEP]", cls_token="[CLS]",
        sep_token="[SEP]", unk_token="<unk>", pad_token="<pad>", mask_token="[MASK]",
        model_max_length=MAX_LENGTH,
    )


@functools.cache
def albert_classifier(tokenizer_source: Path | None = None) -> Path:
    """A tiny randomly initialised TFAlbertForSequenceClassification with its tokenizer:
    trained here, or copied from `tokenizer_source`."""
    import tf_keras
    from transformers import AlbertConfig, TFAlbertForSequenceClassification

    source = "trained" if tokenizer_source is None else tokenizer_source.name
    name = f"albert-classifier-{source}"

    def build(destination: Path) -> None:
        config = albert_tokenizer_config()
        if tokenizer_source is None:
            train_albert_style().save(str(destination / "tokenizer.json"))
        else:
            shutil.copy(tokenizer_source / "tokenizer.json", destination / "tokenizer.json")
            config = json.loads((tokenizer_source / "tokenizer_config.json").read_text())
            config["model_max_length"] = MAX_LENGTH  # the tiny model's positions
        (destination / "tokenizer_config.json").write_text(json.dumps(config))
        tf_keras.utils.set_random_seed(0)
        model = TFAlbertForSequenceClassification(
            AlbertConfig(
                vocab_size=len(hf_tokenizer(destination)), embedding_size=16, hidden_size=32,
                num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                max_position_embeddings=MAX_LENGTH, pad_token_id=0, bos_token_id=2,
                eos_token_id=3, id2label=CLASSIFIER_LABELS,
                label2id={label: i for i, label in CLASSIFIER_LABELS.items()},
            )
        )
        model(model.dummy_inputs)
        model.save_pretrained(str(destination))

    return cached_folder("checkpoint", name, code_digest(Path(__file__), TEXTS_MODULE), build)


@functools.cache
def exported_text_classifier(path: Path):
    """The text-classification pipeline of the checkpoint at ``path``, exported once."""
    from tfpipe.pipelines import pipeline

    return cached_export(f"text-classification-{path.name}",
                         lambda: pipeline("text-classification", path), __file__)


def assert_holds_no_tables(export_dir: Path) -> None:
    """The SavedModel's variables hold no table contents: vocabularies are graph constants,
    and the word cache (the text the process saw before export) is never saved."""
    import tensorflow as tf

    checkpoint = str(Path(export_dir) / "variables" / "variables")
    tables = [name for name, _ in tf.train.list_variables(checkpoint) if "table" in name]
    assert not tables, tables


def assert_export_serves_like_hf_flow(path: Path, texts: list[str]) -> None:
    """The checkpoint's classifier exported (the self-check reloads it as TF Serving would)
    and served: only core TF ops, probabilities within 1e-5 of the HF flow."""
    import tensorflow as tf

    from tfpipe.export.graph_audit import foreign_ops

    exported = exported_text_classifier(path)
    assert exported.op_types and not foreign_ops(exported.op_types)
    assert_holds_no_tables(exported.path)
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    outputs = {key: value.numpy() for key, value in served(text=tf.constant(texts)).items()}
    assert_matches_hf_flow(outputs, path, texts)
