"""Words that are one vocabulary piece the reference keeps whole, read off the reference at
build time: such a word takes its id with one lookup and skips the lattice and the Viterbi
pass (docs/how-it-works.md#unigram-modelsunigram)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tfpipe.tokenization.codepoint_tables import cached_arrays
from tfpipe.tokenization.reference import reference_tokenizer


def whole_pieces(
    component: dict, pieces: list[tuple[str, float]], ids: dict[str, int]
) -> dict[str, int]:
    """Each piece whose reference segmentation is that piece alone → its id.

    The reference is `tokenizers`' own Unigram built from `component`; its answers are used
    only if it holds exactly the pieces and scores compiled into the graph (scores decide
    near-ties); otherwise no piece is listed, and every word takes the lattice and Viterbi
    pass.
    """
    try:
        reference = reference_tokenizer(model=component)
    except Exception:  # tokenizers' own error type: a model it refuses lists nothing
        return {}
    if not same_pieces(json.loads(reference.to_str())["model"], pieces):
        return {}
    model = reference.model

    def compute() -> dict[str, np.ndarray]:
        kept = [index for token, index in ids.items()
                if [piece.id for piece in model.tokenize(token)] == [index]]
        return {"ids": np.array(kept, np.int64)}

    # Cached on disk (the scan takes seconds for 128k pieces), keyed by everything it reads.
    settings = {key: value for key, value in component.items() if key != "vocab"}
    digest = hashlib.sha256(
        json.dumps([settings, pieces, ids], sort_keys=True).encode()
    ).hexdigest()
    kept = set(cached_arrays({"unigram-whole-pieces": digest}, compute)["ids"].tolist())
    return {token: index for token, index in ids.items() if index in kept}


def same_pieces(reference_model: dict, pieces: list[tuple[str, float]]) -> bool:
    """Whether the reference holds the compiled pieces, in order, with bit-identical scores."""
    held = reference_model.get("vocab") or []
    if [token for token, _ in held] != [token for token, _ in pieces]:
        return False
    return np.array_equal(
        np.array([float(score) for _, score in held], np.float64),
        np.array([score for _, score in pieces], np.float64),
    )
