"""`Digits`: digits split off, one by one or as runs."""

from __future__ import annotations

from tfpipe.tokenization.pre_tokenizers.split_stages import SplitStage, isolated_classes


def compile_digits(component: dict) -> list[SplitStage]:
    """Each digit isolated (individual_digits) or each run of digits kept together."""
    individual = bool(component.get("individual_digits", False))
    classes = isolated_classes({"type": "Digits", "individual_digits": True})
    return [SplitStage(classes, "Isolated" if individual else "Contiguous")]
