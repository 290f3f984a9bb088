"""Op audit: which ops of a graph a stock TensorFlow (and so TF Serving) build cannot run.

An op is *foreign* when it is not registered in the running TensorFlow after importing only
TensorFlow itself (custom-op libraries such as tensorflow-text register theirs on import), or
when it calls back into Python (``PyFunc`` and friends), which no model server has.
"""

from __future__ import annotations

from collections.abc import Iterable

from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import op_def_registry

PYTHON_CALLBACK_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def graph_op_types(graph_def: graph_pb2.GraphDef) -> set[str]:
    """Every op type in a GraphDef, including the bodies of its function library."""
    ops = {node.op for node in graph_def.node}
    function_names = {fn.signature.name for fn in graph_def.library.function}
    for fn in graph_def.library.function:
        ops.update(node.op for node in fn.node_def)
    return ops - function_names


def foreign_ops(op_types: Iterable[str]) -> set[str]:
    """The op types that stock TensorFlow Serving cannot run."""
    return {
        op
        for op in op_types
        if op in PYTHON_CALLBACK_OPS or op_def_registry.get(op) is None
    }
