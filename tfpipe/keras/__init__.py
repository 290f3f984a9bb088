"""`tfpipe.keras`: tfpipe for Keras 3 (TensorFlow backend).

`TokenizerLayer` is the compiled Hugging Face tokenizer as a Keras 3 layer, computing what
`tfpipe.TokenizerLayer` (tf-keras) computes; `pipeline` builds text-classification and
feature-extraction models on keras-hub backbones; `export` is `tfpipe.export`, which takes
these models too; `verify_saved_model` runs tfpipe's self-check on a SavedModel written by
Keras itself (`model.export`). Nothing here imports tf-keras layers, and `import tfpipe`
does not import this package (docs/keras3.md says which to use when).
"""

from typing import Any

from tfpipe.export import ExportError, export
from tfpipe.keras.tokenizer_layer import TokenizerLayer
from tfpipe.keras.verification import verify_saved_model

__all__ = ["ExportError", "PipelineError", "TokenizerLayer", "export", "pipeline",
           "verify_saved_model"]


def __getattr__(name: str) -> Any:
    """`pipeline` and `PipelineError` on first use: they import keras-hub (and with it
    tensorflow-text), which the tokenizer layer alone does not need."""
    if name in ("pipeline", "PipelineError"):
        from tfpipe.keras import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module 'tfpipe.keras' has no attribute {name!r}")
