"""Probing the reference in runs of code points (`probe_in_runs`, what every local map and
class table is built with) tabulates exactly what asking about each code point alone does.

Each table is built twice, with no disk cache: in runs, and (runs of one code point) each
code point alone; by default over a sample of code points, over all in the full run. Maps
composed at build time (`CodepointMap.then`) map each code point as the reference's Sequence
of them does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from samples import FULL, slow_beyond
from texts import SHARED_DIR
from tokenizers import normalizers as hf_normalizers
from tokenizers.normalizers import NFD

from tfpipe.tokenization import codepoint_tables
from tfpipe.tokenization.codepoint_tables import (
    CodepointMap,
    combining_classes,
    probe_map,
    unchanged_by,
)
from tfpipe.tokenization.normalizers.bert import accent_filter
from tfpipe.tokenization.normalizers.precompiled import charsmap_rules, grapheme_classes
from tfpipe.tokenization.normalizers.stages import reference_normalizer, whitespace_classes
from tfpipe.tokenization.pre_tokenizers.byte_level import byte_level_classes
from tfpipe.tokenization.pre_tokenizers.split_stages import isolated_classes
from tfpipe.tokenization.pre_tokenizers.whitespace import word_space_other_classes

# Every kind of component built as a local map (normalizers/stages.local_map), with the
# BertNormalizer's parts as normalizers/bert.py splits them.
LOCAL_MAPS = {
    "bert clean_text + chinese": {"type": "BertNormalizer", "clean_text": True,
                                  "handle_chinese_chars": True, "strip_accents": False,
                                  "lowercase": False},
    "bert clean_text": {"type": "BertNormalizer", "clean_text": True,
                        "handle_chinese_chars": False, "strip_accents": False,
                        "lowercase": False},
    "bert lowercase": {"type": "BertNormalizer", "clean_text": False,
                       "handle_chinese_chars": False, "strip_accents": False,
                       "lowercase": True},
    "NFD": {"type": "NFD"},
    "NFKD": {"type": "NFKD"},
    "Lowercase": {"type": "Lowercase"},
    "StripAccents": {"type": "StripAccents"},
    "Nmt": {"type": "Nmt"},
    "Replace one character": {"type": "Replace", "pattern": {"String": "é"}, "content": "e\u0301"},
}
CLASS_TABLES = {
    "WhitespaceSplit": whitespace_classes,
    "Whitespace": word_space_other_classes,
    "BertPreTokenizer": lambda: isolated_classes({"type": "BertPreTokenizer"}),
    "Punctuation": lambda: isolated_classes({"type": "Punctuation", "behavior": "Isolated"}),
    "Digits": lambda: isolated_classes({"type": "Digits", "individual_digits": True}),
    "ByteLevel": byte_level_classes,
    "canonical combining classes": lambda: combining_classes(NFD().normalize_str),
}
# The first 0x3400 code points (controls, Latin, Greek, Cyrillic, marks, ..., CJK
# punctuation) and some CJK ideographs.
SAMPLED = np.r_[0:0x3400, 0x4E00:0x5200]


@pytest.fixture(autouse=True)
def probed_afresh(monkeypatch, tmp_path):
    """No cached table is read or kept; the sample of code points by default."""
    monkeypatch.setenv("TFPIPE_CACHE_DIR", str(tmp_path / "cache"))
    if not FULL:
        monkeypatch.setattr(codepoint_tables, "all_codepoints", lambda: SAMPLED)


def each_code_point_alone(monkeypatch, build):
    """`build()` with runs of one code point, in a cache directory of its own."""
    with monkeypatch.context() as patch:
        patch.setattr(codepoint_tables, "PROBE_CHUNK", 1)
        patch.setenv("TFPIPE_CACHE_DIR", f"{codepoint_tables.cache_dir()}-each")
        return build()


def map_arrays(name: str, in_runs: bool) -> dict[str, np.ndarray]:
    if name == "bert accent filter":
        probe, unchanged = accent_filter()
    else:
        probe = reference_normalizer(LOCAL_MAPS[name]).normalize_str
        unchanged = unchanged_by(probe)
    return probe_map(probe, unchanged if in_runs else None).to_arrays()


@pytest.mark.parametrize(
    "name", slow_beyond([*LOCAL_MAPS, "bert accent filter"], ["bert clean_text + chinese"])
)
def test_maps_probed_in_runs_equal_each_code_point_alone(name):
    """The BertNormalizer part changes about 100,000 code points (spaces around CJK), the
    most of any."""
    each, runs = map_arrays(name, in_runs=False), map_arrays(name, in_runs=True)
    for part, array in each.items():
        np.testing.assert_array_equal(runs[part], array, err_msg=part)
    identity = CodepointMap.from_outputs({}).to_arrays()
    assert any(not np.array_equal(each[part], identity[part]) for part in identity)


@pytest.mark.parametrize("names", [
    ("NFKD", "Lowercase", "StripAccents"),
    ("bert clean_text + chinese", "Replace one character", "bert lowercase", "NFD"),
])
def test_composed_maps_map_each_code_point_as_the_reference_sequence(names):
    """Composition only visits the code points the first map changes; the rest must still
    take every later map's outputs (CJK spacing, then é's decomposition, then lowercasing)."""
    components = [LOCAL_MAPS[name] for name in names]
    maps = [probe_map(normalize, unchanged_by(normalize)) for normalize in
            (reference_normalizer(component).normalize_str for component in components)]
    composed = maps[0]
    for mapping in maps[1:]:
        composed = composed.then(mapping)
    sequence = hf_normalizers.Sequence([reference_normalizer(c) for c in components])
    cps = codepoint_tables.all_codepoints()
    lengths, values = composed.outputs_of(cps)
    images = np.split(values, np.cumsum(lengths)[:-1])
    expected = [sequence.normalize_str(chr(cp)) for cp in cps.tolist()]
    assert ["".join(map(chr, image.tolist())) for image in images] == expected
    assert sum(image != chr(cp) for image, cp in zip(expected, cps.tolist(), strict=True)) > 100


@pytest.mark.parametrize("name", slow_beyond(list(CLASS_TABLES), ["BertPreTokenizer"]))
def test_classes_probed_in_runs_equal_each_code_point_alone(name, monkeypatch):
    runs = CLASS_TABLES[name]()
    each = each_code_point_alone(monkeypatch, CLASS_TABLES[name])
    np.testing.assert_array_equal(runs, each)
    assert runs.any()


# The shared checkpoints with a Precompiled normalizer whose charsmaps differ.
CHARSMAP_CHECKPOINTS = ["t5-small", "albert-base-v2", "deberta-v3-small",
                        "hf-fixture-test-sentencepiece"]


def precompiled_component(name: str) -> dict:
    path = SHARED_DIR / "tokenizers" / name / "tokenizer.json"
    if not path.is_file():
        pytest.skip(f"shared test data not found at {SHARED_DIR} (clone it beside the repo)")
    normalizer = json.loads(path.read_text())["normalizer"]
    parts = normalizer["normalizers"] if normalizer["type"] == "Sequence" else [normalizer]
    return next(part for part in parts if part["type"] == "Precompiled")


@pytest.mark.parametrize("name", slow_beyond(CHARSMAP_CHECKPOINTS, ["t5-small"]))
def test_charsmap_tables_probed_in_runs_equal_each_code_point_alone(name, monkeypatch):
    """A Precompiled normalizer's map and grapheme classes (normalizers/precompiled.py)."""
    component = precompiled_component(name)
    normalize = reference_normalizer(component).normalize_str
    rules = charsmap_rules(component["precompiled_charsmap"])

    def build() -> dict[str, np.ndarray]:
        mapping = probe_map(normalize, unchanged_by(normalize))
        return {**mapping.to_arrays(), **grapheme_classes(normalize, rules, mapping)}

    runs, each = build(), each_code_point_alone(monkeypatch, build)
    for part, array in each.items():
        np.testing.assert_array_equal(runs[part], array, err_msg=part)
    assert all(runs[part].any() for part in ("joins", "blocks", "prepends"))
