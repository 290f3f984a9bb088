"""The ``tfpipe`` command starts quietly: TensorFlow's import-time logging is held back.

TensorFlow 2.21 logs oneDNN, CUDA and CPU-feature lines through absl while it is imported,
before TF_CPP_MIN_LOG_LEVEL applies to them, and ``tfpipe/__init__.py`` imports it before
any command code runs. So this module, imported first by the package, checks whether this
process is the command (the ``tfpipe`` script, or ``python -m tfpipe``) and then imports
TensorFlow with stderr held back (replayed if the import fails) and TF_CPP_MIN_LOG_LEVEL=3
for what TensorFlow logs later. Library users' processes are left alone, and
``TFPIPE_DEBUG=1`` shows everything. TF_ENABLE_ONEDNN_OPTS is never set: it changes numerics.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def running_the_command() -> bool:
    """The ``tfpipe`` console script, or ``python -m tfpipe``: while ``-m`` imports the
    package, ``sys.argv[0]`` is ``"-m"`` and the module name follows it in ``orig_argv``."""
    if Path(sys.argv[0]).stem == "tfpipe":
        return True
    arguments = sys.orig_argv
    if sys.argv[0] != "-m" or "-m" not in arguments[:-1]:
        return "-mtfpipe" in arguments
    return arguments[arguments.index("-m") + 1] == "tfpipe"


def import_tensorflow_quietly() -> None:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        original_stderr = os.dup(2)
    except OSError:  # no stderr to keep quiet
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            restore_stderr(original_stderr)
            held.seek(0)
            os.write(2, held.read())  # a failed import shows all it said
            raise
        restore_stderr(original_stderr)


def restore_stderr(original_stderr: int) -> None:
    if sys.stderr is not None:
        sys.stderr.flush()
    os.dup2(original_stderr, 2)
    os.close(original_stderr)


if running_the_command() and not os.environ.get("TFPIPE_DEBUG"):
    import_tensorflow_quietly()
