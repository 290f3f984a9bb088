"""Pipelines on a SentencePiece-style model (tiny ALBERT) against the HF flow, through export."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import tensorflow as tf
from model_fixtures import CLASSIFIER_LABELS, SENTENCES, hf_tokenizer, work_dir
from test_bpe_pipelines import assert_matches_hf_flow, run
from test_sentencepiece_parity import albert_style_normalizer
from texts import generate_texts
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    pre_tokenizers,
    processors,
    trainers,
)

from tfpipe.export import export
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.pipelines import pipeline

MAX_LENGTH = 64
SPECIALS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = [
    *SENTENCES,
    "``Quoted'' text — with  double  spaces, accents (café, naïve) and ½ cup.",
    "  leading spaces\tand\nnewlines\u3000and\xa0NBSP  ",
    "[CLS]starts with a special token, and [MASK] in the middle",
    "Emoji 👍🏽 and 🤗, ﬁnal ligatures, 12345 digits",
    "long " * 80,
    "",
]
PAIRS = [*reversed(TEXTS[:-1]), "short"]


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
        vocab_size=1000, special_tokens=SPECIALS, unk_token="<unk>", max_piece_length=12
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
    destination = work_dir() / f"albert-classifier-{source}"
    destination.mkdir()
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
    return destination


def check_classifier_and_export(path: Path) -> None:
    """In memory, then exported (export reloads it in a fresh process with the TF1 `serve`
    loader) and served: probabilities within 1e-5 of the HF flow, only core TF ops."""
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)
    exported = export(model, work_dir() / "saved_models" / f"spm-{path.name}" / "1")
    assert exported.op_types and not foreign_ops(exported.op_types)
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    outputs = {key: value.numpy() for key, value in served(text=tf.constant(TEXTS)).items()}
    assert_matches_hf_flow(outputs, path, TEXTS)


def test_albert_classifier_matches_hf_flow_and_exports():
    check_classifier_and_export(albert_classifier())


def test_albert_text_pair_classification_matches_hf_flow():
    path = albert_classifier()
    model = pipeline("text-classification", path, text_pair=True)
    assert_matches_hf_flow(run(model, TEXTS, text_pair=PAIRS), path, TEXTS, PAIRS)


def test_albert_base_v2_tokenizer_classifier_matches_hf_flow_and_exports(shared_dir):
    """The real albert-base-v2 tokenizer (Precompiled charsmap) in a tiny checkpoint."""
    check_classifier_and_export(albert_classifier(shared_dir / "tokenizers" / "albert-base-v2"))
