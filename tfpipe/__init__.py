"""tfpipe: Hugging Face tokenizers and models as text-in TensorFlow graphs for TF Serving."""

from tfpipe.tokenization.layer import TokenizerLayer

__all__ = ["TokenizerLayer"]
__version__ = "0.1.0"
