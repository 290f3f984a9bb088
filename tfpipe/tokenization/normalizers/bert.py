"""`BertNormalizer`: clean-up, Chinese-character spacing, accent stripping and lowercasing.

It is no single stage: it compiles to its steps, each as the reference runs it on its own —
one `LocalMap` for clean-up and Chinese characters, then (with strip_accents) NFD and its own
accent filter, then (with lowercase) a lowercasing map. Adjacent maps fuse at build time.
"""

from __future__ import annotations

from collections.abc import Callable

from tokenizers import normalizers as hf_normalizers

from tfpipe.tokenization.codepoint_tables import unchanged_by
from tfpipe.tokenization.normalizers.stages import (
    LocalMap,
    Stage,
    local_map,
    probed_map,
    reference_normalizer,
)
from tfpipe.tokenization.normalizers.unicode import decompose


def _bert_part(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False):
    """One step of BertNormalizer on its own, as the reference runs it."""
    options = {
        "clean_text": clean_text,
        "handle_chinese_chars": handle_chinese_chars,
        "strip_accents": strip_accents,
        "lowercase": lowercase,
    }
    return {"type": "BertNormalizer", **options}


def _bert_accent_filter() -> LocalMap:
    """BertNormalizer's accent filter (non-spacing marks only; `StripAccents` drops more).

    After decomposition only NFD-stable code points remain, and on those the reference's
    strip-accents step is exactly the filter.
    """
    return LocalMap(probed_map({"filter": "BertNormalizer.strip_accents"}, *accent_filter()))


def accent_filter() -> tuple[Callable[[str], str], Callable[[str], bool]]:
    """(the filter on one code point, whether it leaves a run unchanged): the reference's
    strip-accents step decomposes, then drops marks, so a run it leaves unchanged holds no
    decomposable code point and no mark."""
    nfd = hf_normalizers.NFD().normalize_str
    strip = reference_normalizer(_bert_part(strip_accents=True)).normalize_str

    def probe(char: str) -> str:
        return strip(char) if nfd(char) == char else char

    return probe, unchanged_by(strip)


def compile_bert(component: dict) -> list[Stage]:
    """The steps the component enables, in the reference's order."""
    lowercase = bool(component.get("lowercase", True))
    strip_accents = component.get("strip_accents")
    strip_accents = lowercase if strip_accents is None else bool(strip_accents)
    stages: list[Stage] = local_map(
        _bert_part(
            clean_text=bool(component.get("clean_text", True)),
            handle_chinese_chars=bool(component.get("handle_chinese_chars", True)),
        )
    )
    if strip_accents:
        stages += decompose({"type": "NFD"}) + [_bert_accent_filter()]
    if lowercase:
        stages += local_map(_bert_part(lowercase=True))
    return stages
