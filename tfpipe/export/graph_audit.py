"""Op audit: which ops of a graph a stock TensorFlow (and so TF Serving) build cannot run.

An op is *foreign* when it is not registered in the running TensorFlow after importing only
TensorFlow itself (custom-op libraries such as tensorflow-text register theirs on import), or
when it calls back into Python (``PyFunc`` and friends), which no model server has.
Also the graph's constant bytes: a serving process holds many copies of every constant while
it loads and instantiates the graph, so they cost far more memory than their size on disk.
"""

from __future__ import annotations

from collections.abc import Iterable

from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import op_def_registry, tensor_util

PYTHON_CALLBACK_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def graph_op_types(graph_def: graph_pb2.GraphDef) -> set[str]:
    """Every op type in a GraphDef, including the bodies of its function library."""
    ops = {node.op for node in graph_def.node}
    function_names = {fn.signature.name for fn in graph_def.library.function}
    for fn in graph_def.library.function:
        ops.update(node.op for node in fn.node_def)
    return ops - function_names


def constant_bytes(graph_def: graph_pb2.GraphDef) -> int:
    """Bytes of the values of every ``Const`` node, function bodies included."""
    nodes = [*graph_def.node, *(node for fn in graph_def.library.function for node in fn.node_def)]
    return sum(_value_bytes(node.attr["value"].tensor) for node in nodes if node.op == "Const")


def _value_bytes(tensor) -> int:
    """A TensorProto's value size: its elements' bytes, or its strings' lengths."""
    array = tensor_util.MakeNdarray(tensor)
    return sum(len(item) for item in array.flat) if array.dtype == object else array.nbytes


def foreign_ops(op_types: Iterable[str]) -> set[str]:
    """The op types that stock TensorFlow Serving cannot run."""
    return {
        op
        for op in op_types
        if op in PYTHON_CALLBACK_OPS or op_def_registry.get(op) is None
    }
