"""Pipelines on a SentencePiece-style model (tiny ALBERT) against the HF flow, through export."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import SENTENCES, assert_matches_hf_flow, run
from pipeline_checkpoints import (
    albert_classifier,
    assert_export_serves_like_hf_flow,
    deberta_v3_classifier,
)

from tfpipe.pipelines import pipeline

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


def check_classifier(path: Path) -> None:
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)


@pytest.mark.slow
def test_albert_classifier_matches_hf_flow():
    """The pair test below runs the same trained tokenizer's pipeline, and the albert-base-v2
    test single texts on the same components (make test-full only)."""
    check_classifier(albert_classifier())


@pytest.mark.slow
def test_albert_classifier_export_serves_like_hf_flow():
    """The albert-base-v2 tokenizer's export below covers the same components (make test-full
    only)."""
    assert_export_serves_like_hf_flow(albert_classifier(), TEXTS)


def test_albert_text_pair_classification_matches_hf_flow():
    path = albert_classifier()
    model = pipeline("text-classification", path, text_pair=True)
    assert_matches_hf_flow(run(model, TEXTS, text_pair=PAIRS), path, TEXTS, PAIRS)


def test_albert_base_v2_tokenizer_classifier_matches_hf_flow_and_exports(shared_dir):
    """The real albert-base-v2 tokenizer (Precompiled charsmap) in a tiny checkpoint: in
    memory, then exported (export reloads it in a fresh process with the TF1 `serve` loader)
    and served: probabilities within 1e-5 of the HF flow, only core TF ops."""
    path = albert_classifier(shared_dir / "tokenizers" / "albert-base-v2")
    check_classifier(path)
    assert_export_serves_like_hf_flow(path, TEXTS)


@pytest.mark.slow
def test_deberta_v3_classifier_matches_hf_flow_and_exports(shared_dir):
    """deberta-v3-small's tokenizer in a tiny DeBERTa v3 classifier, whose attention compares
    sequence lengths in Python (run through AutoGraph: tfpipe.model_types): in memory, then
    exported and served as TF Serving loads it. In make test-full only: make test checks
    that tokenizer against HF (test_sentencepiece_parity.py), DeBERTa v3's attention in
    tfpipe's graph (test_model_types.py), a model run through AutoGraph exported (BART's
    zero-shot) and a Unigram classifier exported (albert-base-v2's above)."""
    path = deberta_v3_classifier(shared_dir / "tokenizers" / "deberta-v3-small")
    check_classifier(path)
    assert_export_serves_like_hf_flow(path, TEXTS)
