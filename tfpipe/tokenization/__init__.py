"""The HF tokenizer pipeline compiled to core TensorFlow ops, one module per component."""

from tfpipe.tokenization.detokenizer_layer import DetokenizerLayer
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer

__all__ = ["DetokenizerLayer", "TokenizerLayer", "UnsupportedComponentError"]
