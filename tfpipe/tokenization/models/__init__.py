"""Tokenization models, one module per `tokenizers` model type."""

from __future__ import annotations

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.bpe import BPE
from tfpipe.tokenization.models.unigram import Unigram
from tfpipe.tokenization.models.wordlevel import WordLevel
from tfpipe.tokenization.models.wordpiece import WordPiece

MODELS = {"BPE": BPE, "Unigram": Unigram, "WordPiece": WordPiece, "WordLevel": WordLevel}


def model_type(component: dict) -> str:
    """The model's type; older tokenizer.json files leave it to be inferred from the fields."""
    if "type" in component:
        return component["type"]
    if "merges" in component:
        return "BPE"
    if "max_input_chars_per_word" in component:
        return "WordPiece"
    return "Unigram" if isinstance(component.get("vocab"), list) else "WordLevel"


def compile_model(component: dict):
    """The compiled `model` section; unsupported types fail here, at build time."""
    kind = model_type(component)
    if kind not in MODELS:
        raise UnsupportedComponentError("model", kind)
    return MODELS[kind](component)
