"""Tiny seeded checkpoints for the token-level tasks (token classification, question
answering, fill-mask) in three tokenizer families, and transformers' TF pipelines on them:
the references the task tests compare against.

Families: ``bert`` (MiniLM's bert-base-uncased WordPiece, always available), and with the
shared tokenizers beside the repository ``bert-cased`` (bert-base-cased), ``roberta``
(roberta-base, byte-level BPE) and ``albert`` (albert-base-v2, Unigram). Each checkpoint is a
real ``save_pretrained`` folder with the tokenizer's files and a randomly initialised model
(seed 0) sized to the tokenizer's vocabulary; builds are cached on disk (disk_cache.py).
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from disk_cache import cached_folder, code_digest
from model_fixtures import copy_tokenizer_files, hf_tokenizer
from texts import SHARED_DIR

# Tokens per sequence in every task checkpoint: small enough that course texts overflow.
# (Weights are drawn with initializer_range 0.2, not 0.02, so that predictions are decisive
# and entities and answers vary: a near-uniform model would make every score alike.)
MAX_POSITIONS = 64
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
# The transformers TF class of each task's model.
TASK_MODEL_CLASSES = {
    "text-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
    "fill-mask": "ForMaskedLM",
}
# Family -> (transformers class prefix, shared tokenizer folder or None for MiniLM's).
FAMILIES = {
    "bert": ("TFBert", None),
    "bert-cased": ("TFBert", "bert-base-cased"),
    "roberta": ("TFRoberta", "roberta-base"),
    "albert": ("TFAlbert", "albert-base-v2"),
}
SHARED_FAMILIES = tuple(name for name, (_, folder) in FAMILIES.items() if folder)
# Families whose tiny checkpoints only model-level tests build (test_packing.py): ELECTRA and
# DistilBERT, with MiniLM's WordPiece.
MODEL_FAMILIES = {"electra": ("TFElectra", None), "distilbert": ("TFDistilBert", None)}


def family_config(family: str, vocab_size: int, task: str):
    """A tiny config of ``family`` whose embeddings hold the tokenizer's vocabulary."""
    from transformers import (
        AlbertConfig,
        BertConfig,
        DistilBertConfig,
        ElectraConfig,
        RobertaConfig,
    )

    sizes = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=37, initializer_range=0.2)
    labels = {}
    if task == "token-classification":
        labels = dict(id2label=NER_LABELS, label2id={v: k for k, v in NER_LABELS.items()})
    if family == "roberta":
        return RobertaConfig(**sizes, **labels, max_position_embeddings=MAX_POSITIONS + 2,
                             pad_token_id=1, bos_token_id=0, eos_token_id=2)
    if family == "albert":
        return AlbertConfig(**sizes, **labels, embedding_size=16,
                            max_position_embeddings=MAX_POSITIONS, pad_token_id=0,
                            bos_token_id=2, eos_token_id=3)
    if family == "electra":
        return ElectraConfig(**sizes, **labels, embedding_size=16,
                             max_position_embeddings=MAX_POSITIONS)
    if family == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2,
                                hidden_dim=37, initializer_range=0.2, **labels,
                                max_position_embeddings=MAX_POSITIONS)
    return BertConfig(**sizes, **labels, max_position_embeddings=MAX_POSITIONS)


def copy_shared_tokenizer(name: str, destination: Path) -> None:
    source = SHARED_DIR / "tokenizers" / name
    for file in ("tokenizer.json", "special_tokens_map.json"):
        shutil.copy(source / file, destination / file)
    config = json.loads((source / "tokenizer_config.json").read_text())
    config["model_max_length"] = MAX_POSITIONS
    (destination / "tokenizer_config.json").write_text(json.dumps(config))


def write_minilm_tokenizer(destination: Path) -> None:
    copy_tokenizer_files(destination)
    path = destination / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["model_max_length"] = MAX_POSITIONS
    path.write_text(json.dumps(config))


@functools.cache
def task_checkpoint(family: str, task: str) -> Path:
    """The tiny ``task`` checkpoint of ``family``; skips the test when ``family`` needs the
    shared tokenizers and they are not beside the repository."""
    prefix, shared_name = {**FAMILIES, **MODEL_FAMILIES}[family]
    if shared_name and not (SHARED_DIR / "tokenizers" / shared_name).is_dir():
        pytest.skip(f"shared tokenizers not found at {SHARED_DIR}")

    def build(destination: Path) -> None:
        import tf_keras
        import transformers

        if shared_name:
            copy_shared_tokenizer(shared_name, destination)
        else:
            write_minilm_tokenizer(destination)
        vocab_size = len(hf_tokenizer(destination))
        tf_keras.utils.set_random_seed(0)
        model_class = getattr(transformers, prefix + TASK_MODEL_CLASSES[task])
        model = model_class(family_config(family, vocab_size, task))
        model(model.dummy_inputs)
        model.save_pretrained(str(destination))

    return cached_folder("checkpoint", f"{family}-{task}", code_digest(Path(__file__)), build)


@functools.cache
def hf_task_model(path: Path, task: str):
    import transformers

    auto_class = getattr(transformers, "TFAutoModel" + TASK_MODEL_CLASSES[task])
    return auto_class.from_pretrained(str(path), local_files_only=True)


def hf_task_pipeline(path: Path, task: str, **options):
    """transformers' TF pipeline for ``task`` on the checkpoint, without torch (model object,
    ``torch_dtype=None``) and on the CPU (``device=-1``)."""
    from transformers import pipeline

    return pipeline(task, model=hf_task_model(path, task), tokenizer=hf_tokenizer(path),
                    framework="tf", torch_dtype=None, device=-1, **options)


# fill-mask
@functools.cache
def exported_fill_mask(family: str = "bert"):
    """The ``family`` fill-mask pipeline (top_k 5) exported as saved_models/fill-mask-FAMILY/1
    (an ExportedModel)."""
    from model_fixtures import cached_export

    from tfpipe.pipelines import pipeline

    checkpoint = task_checkpoint(family, "fill-mask")
    return cached_export(
        f"fill-mask-{family}", lambda: pipeline("fill-mask", checkpoint), described_in=__file__
    )


# question-answering
@functools.cache
def exported_question_answering(family: str = "bert"):
    """The question-answering pipeline (``top_k=2``) of ``family``'s checkpoint, exported:
    an ExportedModel (cached on disk)."""
    from model_fixtures import cached_export

    import tfpipe

    def make_model():
        return tfpipe.pipeline("question-answering", task_checkpoint(family, "question-answering"),
                               top_k=2)

    return cached_export(f"question_answering_{family}", make_model, described_in=__file__)


# token-classification
@functools.cache
def exported_token_classification(family: str = "bert"):
    """The ``family`` token-classification pipeline (simple strategy, stride 16: windows and
    their merge in the graph) exported as saved_models/token-classification-FAMILY/1."""
    from model_fixtures import cached_export

    from tfpipe.pipelines import pipeline

    def make_model():
        return pipeline("token-classification", task_checkpoint(family, "token-classification"),
                        aggregation_strategy="simple", stride=16)

    return cached_export(f"token-classification-{family}", make_model, described_in=__file__)
