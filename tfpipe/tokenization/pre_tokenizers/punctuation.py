"""`Punctuation` and `BertPreTokenizer` (whitespace removed, then punctuation isolated)."""

from __future__ import annotations

from tfpipe.tokenization.normalizers.stages import whitespace_classes
from tfpipe.tokenization.pre_tokenizers.split_stages import (
    SplitStage,
    isolated_classes,
    split_behaviour,
)


def compile_punctuation(component: dict) -> list[SplitStage]:
    """Punctuation split off with the component's behaviour."""
    classes = isolated_classes({"type": "Punctuation", "behavior": "Isolated"})
    return [SplitStage(classes, split_behaviour(component))]


def compile_bert_pre_tokenizer(component: dict) -> list[SplitStage]:
    """Two stages: whitespace removed, then BERT's punctuation (its own class) isolated."""
    return [
        SplitStage(whitespace_classes(), "Removed"),
        SplitStage(isolated_classes({"type": "BertPreTokenizer"}), "Isolated"),
    ]
