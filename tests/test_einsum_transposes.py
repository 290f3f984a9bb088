"""Transposes traced as one-operand Einsums (tfpipe/einsum_transposes.py says why): the same
values bit for bit, no Transpose left in a traced TransformerLayer, tf.transpose restored."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, classifier_checkpoint, hf_sequence_classifier, hf_tokenizer

from tfpipe.einsum_transposes import einsum_equation, einsum_transposes
from tfpipe.transformer import TransformerLayer

VALUES = tf.reshape(tf.range(2 * 3 * 4 * 5, dtype=tf.float32) / 7.0, [2, 3, 4, 5])


def node_lists(function: tf.types.experimental.ConcreteFunction) -> list[list]:
    """The nodes of a concrete function's graph, and of each function it calls."""
    graph_def = function.graph.as_graph_def()
    return [list(graph_def.node)] + [list(f.node_def) for f in graph_def.library.function]


def op_types(function: tf.types.experimental.ConcreteFunction) -> set[str]:
    return {node.op for nodes in node_lists(function) for node in nodes}


def attention_transposes(function: tf.types.experimental.ConcreteFunction) -> list[str]:
    """The Transpose nodes besides tensordot's own (Dense layers on 3-D inputs: identity
    permutations, which the graph optimiser removes before anything runs)."""
    return [
        node.name
        for nodes in node_lists(function)
        for node in nodes
        if node.op == "Transpose" and "/Tensordot/" not in node.name
    ]


def traced(fn, *specs: tf.TensorSpec) -> tf.types.experimental.ConcreteFunction:
    return tf.function(fn, autograph=False).get_concrete_function(*specs)


@pytest.mark.parametrize(
    ("perm", "rank", "equation"),
    [
        ([0, 2, 1, 3], 4, "abcd->acbd"),
        ((-1, -2), 2, "ab->ba"),
        ([2, 0, 1], 3, "abc->cab"),
        ([0, 0, 1], 3, None),
        ([0, 1], 3, None),
        (None, 3, "abc->cba"),
        ([0, 3, 1], 3, None),
        (tf.constant([1, 0]), 2, None),
    ],
)
def test_einsum_equation_moves_axes_as_the_permutation(perm, rank, equation):
    assert einsum_equation(perm, rank) == equation


@pytest.mark.parametrize("perm", [[0, 2, 1, 3], (3, 1, 0, 2), (-1, -2, -3, -4), None])
def test_traced_transposes_are_einsums_with_the_same_values(perm):
    def transpose(values):
        with einsum_transposes():
            return tf.transpose(values, perm=perm)

    function = traced(transpose, tf.TensorSpec(VALUES.shape, tf.float32))
    assert "Einsum" in op_types(function) and "Transpose" not in op_types(function)
    assert np.array_equal(function(VALUES).numpy(), tf.transpose(VALUES, perm=perm).numpy())


def test_transposes_einsum_cannot_do_stay_transposes():
    def transpose(integers, perm):
        with einsum_transposes():
            return tf.transpose(integers, [1, 0]), tf.transpose(VALUES[0, 0], perm)

    function = traced(
        transpose, tf.TensorSpec([2, 3], tf.int32), tf.TensorSpec([2], tf.int32)
    )
    assert "Transpose" in op_types(function) and "Einsum" not in op_types(function)
    integers, values = function(tf.reshape(tf.range(6), [2, 3]), tf.constant([1, 0]))
    assert integers.numpy().tolist() == [[0, 3], [1, 4], [2, 5]]
    assert np.array_equal(values.numpy(), tf.transpose(VALUES[0, 0]).numpy())


def test_tf_transpose_is_restored_after_the_block_even_on_error():
    original = tf.transpose

    def failing(values):
        with einsum_transposes():
            assert tf.transpose is not original
            raise ValueError("inside the block")

    with pytest.raises(ValueError, match="inside the block"):
        traced(failing, tf.TensorSpec([2], tf.float32))
    assert tf.transpose is original
    with einsum_transposes():
        assert tf.transpose is original  # eager: nothing is swapped


def test_a_traced_transformer_layer_has_no_transpose_and_the_hf_logits():
    path = classifier_checkpoint()
    layer = TransformerLayer.from_pretrained(path, "text-classification")
    inputs = dict(hf_tokenizer(path)(SENTENCES, padding=True, return_tensors="tf"))
    specs = {name: tf.TensorSpec([None, None], value.dtype) for name, value in inputs.items()}
    function = traced(lambda features: layer(features), specs)
    assert "Einsum" in op_types(function) and attention_transposes(function) == []
    expected = hf_sequence_classifier(path)(**inputs).logits.numpy()
    np.testing.assert_allclose(function(inputs).numpy(), expected, atol=1e-6)
