"""Can an older TensorFlow (and so an older TF Serving) run an exported graph?

Model-server fleets lag behind the TensorFlow that exports. A SavedModel loads in an older
runtime when every op is registered there; an attribute the older op does not know is
silently dropped at load, which is harmless for bookkeeping attributes and wrong for
behavioural ones (TensorListSetItem's `resize_if_index_out_of_bounds` turns into "list index
out of range" on the first request). So export checks every node, function bodies included,
against the op definitions of the oldest supported runtime, stored in
`ops_tensorflow_<version>.json`.

This module imports only TensorFlow, so it can run by file path in that older runtime to
write the table: `python tfpipe/export/runtime_compat.py > tfpipe/export/ops_tensorflow_2.12.json`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

MINIMUM_TENSORFLOW = "2.12.0"
TABLE_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    f"ops_tensorflow_{MINIMUM_TENSORFLOW.rsplit('.', 1)[0]}.json",
)
# Attributes an older runtime may drop without changing what the op computes.
BOOKKEEPING_ATTRS = frozenset({"debug_name"})


def registered_ops() -> dict[str, list[str]]:
    """Every op registered in the running TensorFlow with its attribute names."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    return {op.name: sorted(attr.name for attr in op.attr) for op in op_list.op}


def load_table() -> dict[str, frozenset[str]]:
    with open(TABLE_PATH, encoding="utf-8") as file:
        ops = json.load(file)["ops"]
    return {name: frozenset(attrs) for name, attrs in ops.items()}


def _nodes(graph_def) -> Iterator:
    yield from graph_def.node
    for function in graph_def.library.function:
        yield from function.node_def


def unsupported_nodes(graph_def, table: dict[str, frozenset[str]]) -> set[str]:
    """Descriptions of the nodes the older runtime cannot run as exported.

    Calls of the graph's own functions are not ops; internal `_`-prefixed attributes are
    runtime hints every version tolerates.
    """
    functions = {function.signature.name for function in graph_def.library.function}
    problems = set()
    for node in _nodes(graph_def):
        if node.op in functions:
            continue
        if node.op not in table:
            problems.add(f"op {node.op}")
            continue
        unknown = {
            name for name in node.attr
            if name not in table[node.op]
            and not name.startswith("_")
            and name not in BOOKKEEPING_ATTRS
        }
        problems.update(f"{node.op}.{name}" for name in unknown)
    return problems


def main() -> int:
    # Run by path, this package folder is on sys.path: drop it so no tfpipe module shadows.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    import tensorflow as tf

    json.dump({"tensorflow": tf.__version__, "ops": registered_ops()}, sys.stdout, indent=0,
              sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
