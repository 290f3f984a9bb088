"""Normalizers: tokenizer.json's `normalizer` section compiled to code-point stages.

`NORMALIZERS` maps each supported `type` to its compiler (component JSON → stages) and is the
one list of what is supported. A `Sequence` is no component but a container, in every section:
its children's stages in order. One module per component family; the stages several of them
share live in stages.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.normalizers.bert import compile_bert
from tfpipe.tokenization.normalizers.byte_level import compile_byte_level
from tfpipe.tokenization.normalizers.precompiled import compile_precompiled
from tfpipe.tokenization.normalizers.prepend import compile_prepend
from tfpipe.tokenization.normalizers.replace import compile_replace
from tfpipe.tokenization.normalizers.stages import Stage, fuse_local_maps, group_local_runs
from tfpipe.tokenization.normalizers.strip import compile_strip
from tfpipe.tokenization.normalizers.unicode import (
    aligned_runs,
    aligned_steps,
    compile_character_map,
    compile_composition,
    compile_decomposition,
)
from tfpipe.tokenization.ragged_ops import positions_in_rows

SECTION = "normalizer"
NORMALIZERS: dict[str, Callable[[dict], list[Stage]]] = {
    "BertNormalizer": compile_bert,
    "NFD": compile_decomposition,
    "NFKD": compile_decomposition,
    "NFC": compile_composition,
    "NFKC": compile_composition,
    "Lowercase": compile_character_map,
    "StripAccents": compile_character_map,
    "Replace": compile_replace,
    "Strip": compile_strip,
    "Prepend": compile_prepend,
    "Precompiled": compile_precompiled,
    "ByteLevel": compile_byte_level,
    "Nmt": compile_character_map,
}


def components(component: dict | None) -> list[dict]:
    """The section's components in order, Sequences opened (none for no normalizer)."""
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [leaf for child in component["normalizers"] for leaf in components(child)]
    return [component]


def compile_stages(component: dict | None) -> list[Stage]:
    """The stages of one component (none for no normalizer); unknown types fail here."""
    if component is None:
        return []
    kind = component.get("type")
    if kind == "Sequence":
        return [stage for child in component["normalizers"] for stage in compile_stages(child)]
    if kind not in NORMALIZERS:
        raise UnsupportedComponentError(SECTION, kind)
    return NORMALIZERS[kind](component)


class Normalizer(tf.Module):
    """The compiled `normalizer` section.

    A tf.Module so the lookup tables of its stages (NFC/NFKC composition, Precompiled keys)
    are tracked and saved with the SavedModel.
    """

    def __init__(self, component: dict | None) -> None:
        super().__init__(name="normalizer")
        self.stages = fuse_local_maps(compile_stages(component))
        self._steps = group_local_runs(self.stages)
        steps = [
            step for child in components(component) for step in aligned_steps(compile_stages(child))
        ]
        self._aligned_steps = aligned_runs(fuse_local_maps(steps))

    def __call__(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        for step in self._steps:
            cps = step.apply(cps)
        return cps

    def aligned(
        self, cps: tf.RaggedTensor, alignment: tf.Tensor | None = None
    ) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """`__call__`, and the alignment of every output code point: int32 [code points, 2],
        the original [start, end) it comes from, moved on from the input's `alignment` (by
        default each code point its own position in its row)."""
        if alignment is None:
            position = positions_in_rows(cps)
            alignment = tf.stack([position, position + 1], axis=1)
        for step in self._aligned_steps:
            cps, alignment = step.apply_aligned(cps, alignment)
        return cps, alignment
