"""Tokenization models, one module per `tokenizers` model type."""

from __future__ import annotations

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models.wordpiece import WordPiece

MODELS = {"WordPiece": WordPiece}


def compile_model(component: dict):
    """The compiled `model` section; unsupported types fail here, at build time."""
    kind = component.get("type")
    if kind not in MODELS:
        raise UnsupportedComponentError("model", kind)
    return MODELS[kind](component)
