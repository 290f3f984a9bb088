"""A tokenizer.json compiled once per process, shared by every layer built from it.

Compiling is the expensive part of a `TokenizerLayer`: reading the document as `tokenizers`
does, building the pipeline's tables, tries and regex checks, and tracing its encoders.
None of it depends on padding, truncation, max_length, pad_to_multiple_of or which outputs
are returned, so, as `tokenizers` builds one `Tokenizer` and sets truncation and padding on
it, layers that differ only in those share one `CompiledTokenizer`.

The memo holds compiled tokenizers weakly: one lives as long as a layer (or a SavedModel
being written) uses it, so building many different tokenizers does not accumulate memory.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref

import tensorflow as tf

from tfpipe.tokenization.checkpoint import read_as_tokenizers_does
from tfpipe.tokenization.halves import encode_in_halves
from tfpipe.tokenization.offsets import OffsetTrimmer
from tfpipe.tokenization.pipeline import TokenizationPipeline
from tfpipe.tokenization.truncation import whitespace_cut_is_exact

_COMPILED: weakref.WeakValueDictionary[str, CompiledTokenizer] = weakref.WeakValueDictionary()
# Held while compiling: two threads asking for one document compile it once. Compiling
# different documents in parallel would gain little, graph building holds the GIL.
_COMPILING = threading.Lock()


class CompiledTokenizer:
    """The pipeline of one tokenizer.json and its traced encoders.

    `encoder(limit)` is the graph function over a batch of strings; with a word-token
    limit (models that `limits_word_tokens`) it may stop early inside long words; with
    `with_words`, each token's word index is packed with its id (word_index.py). Each is
    traced once, on first use, whichever layer uses it first.
    """

    def __init__(self, tokenizer_json: str | bytes) -> None:
        document = read_as_tokenizers_does(tokenizer_json)
        self.pipeline = TokenizationPipeline(document)
        # Cutting long texts before whitespace is exact for this document (truncation.py).
        self.whitespace_cut_is_exact = whitespace_cut_is_exact(document)
        self._document = document
        self._encoders: dict[tuple, tf.types.experimental.GenericFunction] = {}

    @functools.cached_property
    def offset_trimmer(self) -> OffsetTrimmer:
        """The post-processor's trim_offsets step, built when offsets are first asked for."""
        return OffsetTrimmer(self._document.get("post_processor"), self._document)

    def offsets_encoder(self, unit: str) -> tf.types.experimental.GenericFunction:
        """The encoder with word indices and offsets (`pipeline.encode_with_offsets`)."""
        key = ("offsets", unit)
        encoder = self._encoders.get(key)
        if encoder is None:
            encode = functools.partial(self.pipeline.encode_with_offsets, unit=unit)
            encoder = self._encoders.setdefault(key, _graph_function(encode))
        return encoder

    def encoder(
        self, word_token_limit: int | None = None, with_words: bool = False
    ) -> tf.types.experimental.GenericFunction:
        """The encoder stopping words after `word_token_limit` tokens (None: never)."""
        if word_token_limit is not None and not self.pipeline.limits_word_tokens:
            word_token_limit = None
        key = (word_token_limit, with_words)
        encoder = self._encoders.get(key)
        if encoder is None:
            encode = functools.partial(
                self.pipeline.encode, word_token_limit=word_token_limit, with_words=with_words
            )
            # setdefault: a thread losing the race uses the winner's, never traced twice.
            encoder = self._encoders.setdefault(key, _graph_function(encode))
        return encoder


def compiled_tokenizer(tokenizer_json: str | bytes) -> CompiledTokenizer:
    """The CompiledTokenizer of `tokenizer_json`, compiled now unless a live one exists.

    Keyed by the SHA-256 of the text: the compiled graph depends on nothing else (the
    installed `tokenizers`, which reads Unigram scores, is fixed for the process).
    Inside a graph (TF1 graph mode), a private one is compiled.
    """
    key = _digest(tokenizer_json)
    if not tf.executing_eagerly():
        # Tables made inside a graph belong to it: nothing built there is shared.
        return CompiledTokenizer(tokenizer_json)
    with _COMPILING:
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = CompiledTokenizer(tokenizer_json)
            _COMPILED[key] = compiled
        return compiled


def live_compiled_tokenizers() -> int:
    """How many compiled tokenizers are held by a layer now (for tests and diagnostics)."""
    return len(_COMPILED)


def _digest(tokenizer_json: str | bytes) -> str:
    if isinstance(tokenizer_json, str):
        # surrogatepass: a lone surrogate still hashes; parsing then reports it.
        tokenizer_json = tokenizer_json.encode("utf-8", "surrogatepass")
    if not isinstance(tokenizer_json, bytes):
        raise TypeError(
            f"tokenizer_json must be the tokenizer.json text, not {type(tokenizer_json).__name__}"
        )
    return hashlib.sha256(tokenizer_json).hexdigest()


def _graph_function(encode) -> tf.types.experimental.GenericFunction:
    """`encode` as a graph function over a batch of strings, in two halves run side by side
    (`halves.py`)."""
    signature = [tf.TensorSpec([None], tf.string)]
    return tf.function(
        encode_in_halves(encode, signature), input_signature=signature, autograph=False
    )
