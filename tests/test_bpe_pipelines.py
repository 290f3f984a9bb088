"""Pipelines on byte-level BPE models (RoBERTa, GPT-2) against the HF flow, through export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from model_fixtures import (
    CLASSIFIER_LABELS,
    SENTENCES,
    assert_matches_hf_flow,
    hf_zero_shot,
    run,
    work_dir,
)
from pipeline_checkpoints import (
    assert_export_serves_like_hf_flow,
    bart_nli,
    checkpoint,
    gpt2_classifier,
    roberta_classifier,
    roberta_nli,
)
from samples import slow_beyond

from tfpipe.export import export
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.pipelines import pipeline

TEXTS = [
    *SENTENCES,
    "It's fine, isn't it? We'll see — they've said 'maybe'.",
    "  spaces\tand\nnewlines\u3000and\xa0NBSP  ",
    "Emoji 👍🏽 and 🤗 and <mask> in the middle",
    "long " * 80,
    "",
]
PAIRS = [*reversed(TEXTS[:-1]), "short"]


# RoBERTa's export test below builds the same pipeline and checks it against the HF flow:
# its in-memory run here is make test-full only.
@pytest.mark.parametrize("checkpoint_path",
                         slow_beyond([roberta_classifier, gpt2_classifier], [gpt2_classifier]),
                         ids=["roberta", "gpt2"])
def test_text_classification_matches_hf_flow(checkpoint_path):
    path = checkpoint_path()
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)


# GPT-2's export adds no op type to RoBERTa's (one tokenizer family): make test-full only.
@pytest.mark.parametrize("checkpoint_path",
                         slow_beyond([roberta_classifier, gpt2_classifier], [roberta_classifier]),
                         ids=["roberta", "gpt2"])
def test_text_classification_export_serves_like_hf_flow(checkpoint_path):
    assert_export_serves_like_hf_flow(checkpoint_path(), TEXTS)


@pytest.mark.parametrize("checkpoint_path", [roberta_classifier, gpt2_classifier],
                         ids=["roberta", "gpt2"])
def test_text_pair_classification_matches_hf_flow(checkpoint_path):
    path = checkpoint_path()
    model = pipeline("text-classification", path, text_pair=True)
    assert_matches_hf_flow(run(model, TEXTS, text_pair=PAIRS), path, TEXTS, PAIRS)


def test_gpt2_classifier_pools_the_last_token_before_right_padding():
    """A text scores the same alone and in a batch padded past it, as GPT-2 pools the last
    non-pad token."""
    model = pipeline("text-classification", gpt2_classifier())
    batched = run(model, TEXTS)["probabilities"]
    for i, text in enumerate(TEXTS[:4]):
        np.testing.assert_allclose(run(model, [text])["probabilities"][0], batched[i], atol=1e-5)


def test_gpt2_checkpoint_without_pad_token_cannot_build_a_padding_pipeline(tmp_path):
    source = gpt2_classifier()
    shutil.copytree(source, tmp_path / "ckpt")
    config_path = tmp_path / "ckpt" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "pad_token": None}))
    with pytest.raises(ValueError, match="padding token"):
        pipeline("text-classification", tmp_path / "ckpt")


ZERO_SHOT_LABELS = ["politics", "sports", "cooking"]


# BART (as in facebook/bart-large-mnli) runs through AutoGraph (tfpipe.model_types). The
# default run exports BART's; RoBERTa's (make test-full) is the same zero-shot graph around
# the RoBERTa model that the classifier export below covers.
@pytest.mark.parametrize(
    "nli_checkpoint, multi_label",
    slow_beyond([(roberta_nli, False), (roberta_nli, True), (bart_nli, False), (bart_nli, True)],
                [(roberta_nli, True), (bart_nli, False)]),
    ids=["roberta", "roberta-multi-label", "bart", "bart-multi-label"],
)
def test_nli_zero_shot_matches_the_transformers_pipeline(nli_checkpoint, multi_label):
    """Exported too, once per model: the self-check reloads it as TF Serving would."""
    path = nli_checkpoint()
    model = pipeline("zero-shot-classification", path, candidate_labels=ZERO_SHOT_LABELS,
                     hypothesis_template="This text is about {}.", multi_label=multi_label)
    outputs = run(model, TEXTS[:3])
    for text, probabilities, label in zip(
        TEXTS[:3], outputs["probabilities"], outputs["label"], strict=True
    ):
        reference = hf_zero_shot(path)(text, ZERO_SHOT_LABELS, multi_label=multi_label,
                                       hypothesis_template="This text is about {}.")
        by_label = dict(zip(reference["labels"], reference["scores"], strict=True))
        np.testing.assert_allclose(probabilities, [by_label[x] for x in ZERO_SHOT_LABELS],
                                   atol=1e-5)
        assert label.decode() == reference["labels"][0]
    if not multi_label:
        exported = export(model, work_dir() / "saved_models" / f"nli-{path.name}" / "1")
        assert exported.op_types and not foreign_ops(exported.op_types)


def test_roberta_base_tokenizer_classifier_matches_hf_flow(shared_dir):
    """The real roberta-base tokenizer in a tiny checkpoint (needs ../shared)."""
    path = checkpoint("roberta", "TFRobertaForSequenceClassification",
                      tuple(CLASSIFIER_LABELS.items()),
                      tokenizer_source=shared_dir / "tokenizers" / "roberta-base")
    model = pipeline("text-classification", path)
    assert_matches_hf_flow(run(model, TEXTS), path, TEXTS)
