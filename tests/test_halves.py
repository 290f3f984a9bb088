"""Batches encoded in two halves side by side (`tokenization/halves.py`): the halves wait for
nothing of each other, and a batch encodes as its texts do one by one, whatever the cut."""

from __future__ import annotations

import pytest
import tensorflow as tf
from annotations import ANNOTATED, check_annotations
from parity import LayerRunner, shifted
from samples import slow_beyond
from sentencepiece_checkpoints import trained
from transformers import PreTrainedTokenizerFast

from tfpipe import TokenizerLayer
from tfpipe.tokenization.halves import HALF_OPS

# An empty text, texts of one word and a long one, in an order that puts each at the cut.
TEXTS = ["", "the cat sat", "a longer sentence about the cat, sat again " * 8, "mat", "é!"]
OPTIONS = {"padding": "longest", "truncation": True, "max_length": 24}


def depends_on(op: tf.Operation, other: tf.Operation) -> bool:
    """Whether `op` runs only after `other`: a path of data or control edges between them."""
    seen, pending = set(), [op]
    while pending:
        node = pending.pop()
        for parent in [t.op for t in node.inputs] + list(node.control_inputs):
            if parent is other:
                return True
            if parent.name not in seen:
                seen.add(parent.name)
                pending.append(parent)
    return False


@pytest.mark.parametrize("offsets", [False, True], ids=["ids", "offsets"])
def test_the_halves_of_a_batch_wait_for_nothing_of_each_other(offsets):
    """Unigram's encoder writes its word cache, and every encoder looks tables up: traced
    as they are, the second half's call would be ordered after the first's."""
    layer = TokenizerLayer.from_pretrained(trained("Unigram-Metaspace"))
    compiled = layer._compiled
    encoder = compiled.offsets_encoder("char") if offsets else compiled.encoder()
    graph = encoder.get_concrete_function().graph
    halves = [op for op in graph.get_operations() if op.type in HALF_OPS]
    assert len(halves) == 2
    assert not depends_on(halves[0], halves[1]) and not depends_on(halves[1], halves[0])


@pytest.mark.parametrize("offsets", [False, True], ids=["ids", "offsets"])
@pytest.mark.parametrize("count", slow_beyond([0, 1, 2, 3, 5], [0, 1, 3]))
def test_a_batch_encodes_as_its_texts_one_by_one(count, offsets):
    path = trained("Unigram-Metaspace")
    hf = PreTrainedTokenizerFast.from_pretrained(path)
    options = {**OPTIONS, "return_offsets_mapping": offsets}
    layer = TokenizerLayer.from_pretrained(path, **options, **ANNOTATED)
    layer = LayerRunner(layer, traced=True)
    for shift in range(len(TEXTS)):
        texts = shifted(TEXTS, shift)[:count]
        batch = layer(texts)
        for row, text in enumerate(texts):
            alone = layer([text])
            width = int(tf.shape(alone["input_ids"])[1])
            for key, value in alone.items():
                assert batch[key][row, :width].numpy().tolist() == value[0].numpy().tolist()
        check_annotations(layer, hf, texts, **options)
        check_annotations(layer, hf, texts, shifted(texts), **options)
