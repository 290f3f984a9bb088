"""The compiled tokenizer.json: added tokens → normalizer → pre-tokenizer → model.

`TokenizationPipeline.encode` turns a batch of strings into ragged token ids without special
tokens; the Keras layer adds truncation, the post-processor's template and padding on top.
Input bytes are decoded with each invalid UTF-8 sequence becoming U+FFFD exactly as Python's
`bytes.decode("utf-8", errors="replace")` does, so the result equals the HF tokenizer on that
decoded string.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from tfpipe.tokenization import anchoring
from tfpipe.tokenization.added_vocabulary import AddedToken, TokenMatcher
from tfpipe.tokenization.control_flow import functional_cond
from tfpipe.tokenization.errors import UnsupportedComponentError
from tfpipe.tokenization.models import MODELS, Unigram, compile_model, model_type
from tfpipe.tokenization.normalizers import NORMALIZERS, Normalizer
from tfpipe.tokenization.normalizers.stages import reference_normalizer, whitespace_classes
from tfpipe.tokenization.offsets import in_bytes, pack_offsets, part_alignments, token_offsets
from tfpipe.tokenization.pre_tokenizers import PRE_TOKENIZERS, PreTokenizer
from tfpipe.tokenization.pre_tokenizers.whitespace import word_space_other_classes
from tfpipe.tokenization.processors import POST_PROCESSORS, PostProcessor
from tfpipe.tokenization.ragged_ops import (
    merge_inner,
    ordered_pieces,
    positions_in_rows,
    rows_from_ids,
    select,
)
from tfpipe.tokenization.word_index import Words, interleave_words, pack, words_of_pieces

SUPPORTED_SECTIONS = {
    "version",
    "truncation",
    "padding",
    "added_tokens",
    "normalizer",
    "pre_tokenizer",
    "model",
    "post_processor",
    "decoder",
}


REPLACEMENT_CHARACTER = 0xFFFD

# Each section's registry, the one list of the types it supports.
REGISTRIES = {
    "normalizer": NORMALIZERS,
    "pre_tokenizer": PRE_TOKENIZERS,
    "post_processor": POST_PROCESSORS,
    "model": MODELS,
}
# The sections where a `Sequence` holds components, under this key.
CHILDREN = {
    "normalizer": "normalizers",
    "pre_tokenizer": "pretokenizers",
    "post_processor": "processors",
}


def check_supported(document: dict) -> None:
    """Fail fast, naming the component, on anything tfpipe does not compile.

    Runs on the raw JSON, before the reference library parses it: a type the reference does
    not know either would otherwise fail there with a message that names nothing.
    """
    unknown = set(document) - SUPPORTED_SECTIONS
    if unknown:
        raise UnsupportedComponentError("tokenizer.json", sorted(unknown))
    for section, types in REGISTRIES.items():
        pending = [document.get(section)]
        while pending:
            component = pending.pop()
            if component is None:
                continue
            if not isinstance(component, dict):
                raise UnsupportedComponentError(section, component)
            kind = model_type(component) if section == "model" else component.get("type")
            if kind not in types and not (kind == "Sequence" and section in CHILDREN):
                raise UnsupportedComponentError(section, kind)
            pending.extend(component.get(CHILDREN.get(section, ""), None) or [])


def _added_tokens(document: dict) -> tuple[list[AddedToken], list[AddedToken]]:
    """(raw, normalized) added tokens; normalized ones carry their normalized content."""
    normalizer = (
        reference_normalizer(document["normalizer"]) if document.get("normalizer") else None
    )
    raw, normalized = [], []
    # Special tokens first, as `tokenizers` orders its patterns: among tokens whose normalized
    # contents are equal, the first matches.
    entries = document.get("added_tokens") or []
    for entry in sorted(entries, key=lambda entry: not entry.get("special", False)):
        content = entry["content"]
        if not content:
            continue
        flags = {
            "single_word": bool(entry.get("single_word", False)),
            "lstrip": bool(entry.get("lstrip", False)),
            "rstrip": bool(entry.get("rstrip", False)),
        }
        if entry.get("normalized", not entry.get("special", False)):
            if normalizer is not None:
                content = normalizer.normalize_str(content)
            if content:
                normalized.append(AddedToken(content, int(entry["id"]), **flags))
        else:
            raw.append(AddedToken(content, int(entry["id"]), **flags))
    return raw, normalized


def interleave(
    splits: tf.Tensor, text_ids: tf.RaggedTensor, token_ids: tf.Tensor
) -> tf.RaggedTensor:
    """Per row of pieces (`splits`: its row splits), concatenate the ids of its pieces in order.

    `token_ids` (flat over all pieces) is ≥ 0 for added-token pieces; the other pieces, in
    order, have their ids in the rows of `text_ids`.
    """
    ordered = ordered_pieces(text_ids, token_ids, token_ids >= 0)
    return merge_inner(tf.RaggedTensor.from_row_splits(ordered, splits, validate=False))


def decode_replacing_errors(texts: tf.Tensor, with_byte_starts: bool = False):
    """[batch] strings → [batch, (code points)], each invalid UTF-8 sequence U+FFFD as
    Python's `bytes.decode("utf-8", errors="replace")` makes it; with `with_byte_starts`,
    also where each code point starts in its string's bytes (flat, int64)."""
    if not with_byte_starts:
        return tf.strings.unicode_decode(
            texts, "UTF-8", errors="replace", replacement_char=REPLACEMENT_CHARACTER
        )
    cps, starts = tf.strings.unicode_decode_with_offsets(
        texts, "UTF-8", errors="replace", replacement_char=REPLACEMENT_CHARACTER
    )
    return cps, starts.values


def encoded_as_decoded(texts: tf.Tensor, cps: tf.RaggedTensor) -> tf.Tensor:
    """The UTF-8 of `cps` (`texts` decoded, invalid input replaced): `texts` themselves
    unless some U+FFFD is there, the only mark a replacement leaves, so valid texts (most
    batches) skip encoding again."""
    return functional_cond(
        tf.reduce_any(tf.equal(cps.values, REPLACEMENT_CHARACTER)),
        lambda: tf.strings.unicode_encode(cps, "UTF-8"),
        lambda: tf.identity(texts),
    )


class TokenizationPipeline(tf.Module):
    """A tokenizer.json compiled to core TensorFlow ops."""

    def __init__(self, document: dict) -> None:
        super().__init__(name="tokenization_pipeline")
        check_supported(document)
        self.model = compile_model(document["model"])
        self.normalizer = Normalizer(document.get("normalizer"))
        self.pre_tokenizer = PreTokenizer(document.get("pre_tokenizer"))
        if self.pre_tokenizer.needs_anchor:
            anchoring.check_trackable(self.normalizer.stages)
        self.post_processor = PostProcessor(document.get("post_processor"))
        raw, normalized = _added_tokens(document)
        words, spaces = word_space_other_classes(), whitespace_classes()
        self.raw_tokens = TokenMatcher(raw, words, spaces) if raw else None
        self.normalized_tokens = TokenMatcher(normalized, words, spaces) if normalized else None

    @property
    def limits_word_tokens(self) -> bool:
        """Whether `encode` can stop early inside long words (`word_token_limit`)."""
        return isinstance(self.model, Unigram)

    def encode_with_offsets(
        self, texts: tf.Tensor, unit: str = "char"
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """`encode` with words (packed as `with_words` packs them), and each token's offsets in
        the original text: [batch, (start << 32 | end)] int64 (offsets.py), in code points of
        the decoded text, or with `unit` "byte" in bytes of the input.

        Each code point carries its alignment through the normalizer and pre-tokenizer (and
        the added-token splits), so anchoring is read off the alignments."""
        if unit == "byte":
            cps, byte_starts = decode_replacing_errors(texts, with_byte_starts=True)
        else:
            cps = decode_replacing_errors(texts)
        sizes = tf.strings.length(texts)
        if self.raw_tokens is not None:
            texts = encoded_as_decoded(texts, cps)
        position = positions_in_rows(cps)
        alignment = tf.stack([position, position + 1], axis=1)
        encoded = self._split_on(
            self.raw_tokens, texts, cps, alignment, self._normalize_then_split_aligned, True
        )
        offsets = encoded.offsets
        if unit == "byte":
            in_text = in_bytes(offsets.with_values(offsets.values[:, 0]), cps, byte_starts, sizes)
            offsets = offsets.with_values(tf.stack([in_text, offsets.values[:, 1]], axis=1))
        return pack(encoded), offsets

    def encode(
        self, texts: tf.Tensor, word_token_limit: int | None = None, with_words: bool = False
    ) -> tf.RaggedTensor:
        """[batch] strings → [batch, (ids)] token ids, before special tokens and truncation.

        With Metaspace `first`, every piece of text carries its anchored prefix (anchoring):
        a text starts with one code point at original offset 0, its first. With
        `word_token_limit` (models that `limits_word_tokens`), a word's ids may end after
        its first `word_token_limit` or more: right truncation to that many keeps the same.
        `with_words` packs each token's word index with its id (word_index.py), at the cost
        of a few ops per step that the ids alone do not pay.
        """
        cps = decode_replacing_errors(texts)
        if self.raw_tokens is not None:
            # The token matcher reads bytes: the decoded text's, invalid input replaced.
            texts = encoded_as_decoded(texts, cps)
        anchored = tf.ones_like(texts, tf.int32) if self.pre_tokenizer.needs_anchor else None
        encode_text = functools.partial(
            self._normalize_then_split, limit=word_token_limit, with_words=with_words
        )
        encoded = self._split_on(self.raw_tokens, texts, cps, anchored, encode_text)
        return pack(encoded) if with_words else encoded

    def _split_on(
        self,
        matcher: TokenMatcher | None,
        texts: tf.Tensor,
        cps: tf.RaggedTensor,
        carried: tf.Tensor | None,
        encode_text,
        aligned: bool = False,
    ) -> tf.RaggedTensor | Words:
        """Encode the text between the matcher's tokens with `encode_text` (taking code points
        and what they carry); `cps` are the texts' code points.

        `carried` is each text's anchored prefix, or with `aligned` each code point's
        alignment (and the added tokens get offsets). A batch without any token (most
        requests) encodes `cps` as they are: one cond picks what is encoded, one whether token
        ids are put back between the pieces. When `encode_text` returns `Words`, so does this.
        """
        if matcher is None:
            return encode_text(cps, carried)
        marked, found = matcher.find(texts)
        with_starts = carried is not None

        def split() -> tuple:
            if with_starts:
                parts, ids, starts = matcher.split(marked, with_starts=True)
            else:
                parts, ids = matcher.split(marked)
            is_text = ids.values < 0
            text_cps = tf.strings.unicode_decode(select(parts.values, is_text), "UTF-8")
            split_parts = (text_cps, parts.row_splits, ids.values)
            if aligned:
                return (*split_parts, *part_alignments(parts, starts, is_text, cps, carried))
            if not with_starts:
                return split_parts
            prefixes = anchoring.first_part_prefix(parts, starts, carried)
            return (*split_parts, select(prefixes, is_text))

        def unsplit() -> tuple:
            no_parts = (cps, tf.zeros([1], tf.int64), tf.zeros([0], tf.int32))
            if aligned:
                return (*no_parts, carried, tf.zeros([0, 2], tf.int64))
            return (*no_parts, carried) if with_starts else no_parts

        text_cps, splits, ids, *text_carried = tf.cond(found, split, unsplit)
        encoded = encode_text(text_cps, text_carried[0] if with_starts else None)
        if aligned:
            return tf.cond(
                found,
                lambda: interleave_words(splits, encoded, ids, text_carried[1]),
                lambda: encoded,
            )
        join = interleave_words if isinstance(encoded, Words) else interleave
        return tf.cond(found, lambda: join(splits, encoded, ids), lambda: encoded)

    def _normalize_then_split(
        self, cps: tf.RaggedTensor, anchored: tf.Tensor | None, limit: int | None, with_words: bool
    ):
        if anchored is None:
            cps = self.normalizer(cps)
        else:
            cps, anchored = anchoring.normalize(self.normalizer.stages, cps, anchored)
        encode_normalized = functools.partial(
            self._encode_normalized, limit=limit, with_words=with_words
        )
        if self.normalized_tokens is None:
            return encode_normalized(cps, anchored)
        normalized = tf.strings.unicode_encode(cps, "UTF-8")
        return self._split_on(self.normalized_tokens, normalized, cps, anchored, encode_normalized)

    def _normalize_then_split_aligned(self, cps: tf.RaggedTensor, alignment: tf.Tensor) -> Words:
        cps, alignment = self.normalizer.aligned(cps, alignment)
        if self.normalized_tokens is None:
            return self._encode_aligned(cps, alignment)
        normalized = tf.strings.unicode_encode(cps, "UTF-8")
        return self._split_on(
            self.normalized_tokens, normalized, cps, alignment, self._encode_aligned, True
        )

    def _encode_aligned(self, cps: tf.RaggedTensor, alignment: tf.Tensor) -> Words:
        """Pieces of normalized code points with their alignments → their tokens, with words
        and offsets."""
        words, piece_of_word, word_alignment = self.pre_tokenizer.aligned(cps, alignment)
        ids, start, stop = self.model.tokenize_with_spans(words)
        offsets = pack_offsets(*token_offsets(words, word_alignment, ids, start, stop))
        # No whitespace taken, as added tokens take it (offsets.part_alignments).
        offsets = tf.stack([offsets, tf.zeros_like(offsets)], axis=1)
        return words_of_pieces(ids, words, piece_of_word, cps.nrows(), ids.with_values(offsets))

    def _encode_normalized(
        self, cps: tf.RaggedTensor, anchored: tf.Tensor | None, limit: int | None, with_words: bool
    ) -> tf.RaggedTensor | Words:
        words, piece_of_word = self.pre_tokenizer(cps, anchored)
        word_ids = self.model(words) if limit is None else self.model(words, limit)
        if with_words:
            return words_of_pieces(word_ids, words, piece_of_word, cps.nrows())
        per_piece = rows_from_ids(word_ids, piece_of_word, cps.nrows())
        return merge_inner(per_piece)

