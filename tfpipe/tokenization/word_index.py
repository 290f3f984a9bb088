"""The word of every token, as `tokenizers` numbers words (`Encoding::word_ids`).

`PreTokenizedString::into_encoding` gives each token the index of its split among the
text's splits: every piece the added-token matchers cut out (one split per added token),
then every word the pre-tokenizer makes of the text between them. Splits are never empty
(`split` drops empty ones), and a split whose model output is empty still takes an index.

The pipeline carries, for each piece it encodes, its token ids, each token's word index
within the piece, and the piece's word count (`Words`); joining pieces shifts each piece's
indices by the words of the pieces before it in its text. The encoder's result packs word
and id into one int64 per token (`pack`), so truncation, early-stop row replacement and
row selection move them together with the ragged ops the ids already use.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfpipe.tokenization.ragged_ops import merge_inner, ordered_pieces, row_ids, rows_from_ids

ID_BITS = 32


class Words(NamedTuple):
    """Per piece: token ids, each token's word index within the piece, words in the piece,
    and when asked each token's original offsets (start << 32 | end, see offsets.py)."""

    ids: tf.RaggedTensor
    words: tf.RaggedTensor
    counts: tf.Tensor
    offsets: tf.RaggedTensor | None = None


def words_of_pieces(
    tokens: tf.RaggedTensor,
    words: tf.RaggedTensor,
    piece_of_word: tf.Tensor,
    pieces: tf.Tensor,
    offsets: tf.RaggedTensor | None = None,
) -> Words:
    """The model's [words, (ids)] `tokens` grouped into pieces, each token with its word
    (and `offsets`, shaped as `tokens`).

    `words` ([words, (code points)]) tells the empty words apart: they are no split.
    """
    nonempty = tf.cast(words.row_lengths() > 0, tf.int32)
    counts = tf.math.unsorted_segment_sum(nonempty, piece_of_word, pieces)
    first = tf.cumsum(counts, exclusive=True)
    index = tf.cumsum(nonempty, exclusive=True) - tf.gather(first, piece_of_word)
    token_words = tokens.with_values(tf.gather(index, row_ids(tokens)))
    def per_piece(rows: tf.RaggedTensor) -> tf.RaggedTensor:
        return merge_inner(rows_from_ids(rows, piece_of_word, pieces))

    grouped = None if offsets is None else per_piece(offsets)
    return Words(per_piece(tokens), per_piece(token_words), counts, grouped)


def interleave_words(
    splits: tf.Tensor, text: Words, token_ids: tf.Tensor, token_offsets: tf.Tensor | None = None
) -> Words:
    """`pipeline.interleave` carrying word indices: an added token is a word of its own.

    `splits`: the rows' splits into pieces; `token_ids` (one per piece) ≥ 0 for added tokens,
    `token_offsets` theirs when `text` has offsets; `text` holds the text pieces, in order.
    """
    is_token = token_ids >= 0
    ids = ordered_pieces(text.ids, token_ids, is_token)
    local = ordered_pieces(text.words, tf.zeros_like(token_ids), is_token)
    text_at = tf.where(~is_token)
    counts = tf.scatter_nd(text_at, text.counts, tf.shape(token_ids, out_type=tf.int64))
    counts += tf.cast(is_token, tf.int32)
    ends = tf.concat([[0], tf.cumsum(counts)], 0)
    row_of_piece = row_ids(tf.RaggedTensor.from_row_splits(counts, splits, validate=False))
    before = ends[:-1] - tf.gather(ends, tf.gather(splits, row_of_piece))
    words = local.with_values(local.values + tf.gather(before, row_ids(local)))
    row_counts = tf.gather(ends, splits[1:]) - tf.gather(ends, splits[:-1])
    offsets = None
    if text.offsets is not None:
        offsets = _rows(ordered_pieces(text.offsets, token_offsets, is_token), splits)
    return Words(_rows(ids, splits), _rows(words, splits), row_counts, offsets)


def _rows(pieces: tf.RaggedTensor, splits: tf.Tensor) -> tf.RaggedTensor:
    return merge_inner(tf.RaggedTensor.from_row_splits(pieces, splits, validate=False))


def pack(encoded: Words) -> tf.RaggedTensor:
    """[texts, (tokens)] int64: word index in the high bits, id in the low ones."""
    words = tf.cast(encoded.words.values, tf.int64) * (1 << ID_BITS)
    return encoded.ids.with_values(words + tf.cast(encoded.ids.values, tf.int64))


def unpack(packed: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """`pack`'s (ids, word indices), int32 each."""
    values = packed.values
    words = tf.bitwise.right_shift(values, ID_BITS)
    ids = values - words * (1 << ID_BITS)
    return packed.with_values(tf.cast(ids, tf.int32)), packed.with_values(tf.cast(words, tf.int32))
