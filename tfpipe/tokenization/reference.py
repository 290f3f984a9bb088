"""The reference implementation, one component at a time.

Tables and templates are read off the installed `tokenizers` by running a component on probe
inputs; this builds a minimal reference Tokenizer around the component under study.
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer

EMPTY_MODEL = {"type": "WordLevel", "vocab": {}, "unk_token": "[UNK]"}


def reference_tokenizer(
    *,
    normalizer: dict | None = None,
    pre_tokenizer: dict | None = None,
    post_processor: dict | None = None,
    model: dict | None = None,
) -> Tokenizer:
    """A reference Tokenizer with just the given sections."""
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": None,
        "model": model or EMPTY_MODEL,
    }
    return Tokenizer.from_str(json.dumps(document))
