"""Layer calls that AutoGraph leaves alone.

Keras runs a subclassed layer's ``call`` through AutoGraph, which rewrites the Python source of
it and of everything it calls, recursively, the first time each is traced in a process.
tfpipe's graphs use TensorFlow control flow explicitly (``tf.cond``, ``tf.while_loop``), so
the rewrite changes no op; it took about half of a pipeline's build time (a MiniLM
classifier: 8.0 s with it, 4.3 s without; transformers' model code was rewritten too), in
every process that builds, exports or restores one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf

Call = TypeVar("Call", bound=Callable)


def unconverted(call: Call) -> Call:
    """``call`` (a layer's) traced as written, as are the layers it calls; Keras still sees
    its signature (which arguments such as ``training`` it takes)."""
    return tf.__internal__.decorator.make_decorator(
        call, tf.autograph.experimental.do_not_convert(call)
    )
