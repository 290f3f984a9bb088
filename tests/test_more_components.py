"""The remaining component types of `tokenizers` (issue 19): ByteLevel and Nmt normalizers,
CharDelimiterSplit, FixedLength and UnicodeScripts pre-tokenizers, the WordLevel model.

Component-level parity on generated and course texts is in tests/test_components.py; here:
the tables on every code point, what the reference refuses, and trained tokenizers using
them end to end against the HF fast tokenizer.
"""

from __future__ import annotations

import pytest
import tensorflow as tf
from samples import slow_beyond
from tokenizers import pre_tokenizers as hf_pre_tokenizers

from tfpipe.tokenization.codepoint_tables import all_codepoints
from tfpipe.tokenization.pre_tokenizers import PreTokenizer


def pre_tokenized_by_graph(component: dict, texts: list[str]) -> list[list[str]]:
    words, piece = PreTokenizer(component)(tf.strings.unicode_decode(tf.constant(texts), "UTF-8"))
    rows = tf.RaggedTensor.from_value_rowids(
        tf.strings.unicode_encode(words, "UTF-8"), tf.cast(piece, tf.int64), nrows=len(texts)
    )
    return [[w.decode() for w in row] for row in rows.to_list()]


@pytest.mark.parametrize("joiner", slow_beyond(["a", "", " "], ["a"]))
def test_unicode_scripts_split_every_code_point_as_the_reference(joiner):
    """Every code point after each other (runs of a script) and between Latin letters or
    spaces (each script and Any against a neighbour)."""
    text = joiner.join(map(chr, all_codepoints().tolist()))
    expected = [w for w, _ in hf_pre_tokenizers.UnicodeScripts().pre_tokenize_str(text)]
    assert pre_tokenized_by_graph({"type": "UnicodeScripts"}, [text]) == [expected]
