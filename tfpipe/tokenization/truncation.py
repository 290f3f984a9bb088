"""Truncation, as `tokenizers` does it: before special tokens are added, per row.

`max_length` counts the special tokens, so the budget for the sequences is `max_length` minus
the template's special tokens. Strategies and their tie-breaking follow
`tokenizers::utils::truncation::truncate_encodings`.
"""

from __future__ import annotations

import tensorflow as tf

from tfpipe.tokenization.models import model_type
from tfpipe.tokenization.models.wordlevel import fails_on_unknown_words
from tfpipe.tokenization.ragged_ops import mask_values, positions_in_rows, row_ids

STRATEGIES = ("longest_first", "only_first", "only_second")
TOO_SHORT = "Truncation error: Sequence to truncate too short to respect the provided max_length"
NO_SECOND = "Truncation error: Second sequence not provided"


def keep_lengths(
    lengths: list[tf.Tensor], budget: int, strategy: str
) -> tuple[list[tf.Tensor], list[tf.Operation]]:
    """Per-row lengths to keep for each sequence, and the checks that raise HF's errors."""
    total = tf.add_n(lengths) if len(lengths) > 1 else lengths[0]
    over = total > budget
    if budget == 0:
        return [tf.zeros_like(n) for n in lengths], []
    if strategy == "longest_first":
        if len(lengths) == 1:
            return [tf.minimum(lengths[0], budget)], []
        return _longest_first(lengths[0], lengths[1], budget, over), []
    target = 0 if strategy == "only_first" else 1
    checks = []
    if target >= len(lengths):
        checks.append(tf.debugging.Assert(~tf.reduce_any(over), [NO_SECOND]))
        return lengths, checks
    to_remove = total - budget
    too_short = over & (lengths[target] <= to_remove)
    checks.append(tf.debugging.Assert(~tf.reduce_any(too_short), [TOO_SHORT]))
    kept = list(lengths)
    kept[target] = tf.where(over, lengths[target] - to_remove, lengths[target])
    return kept, checks


def _longest_first(n1: tf.Tensor, n2: tf.Tensor, budget: int, over: tf.Tensor):
    swap = n1 > n2
    short = tf.minimum(n1, n2)
    long_kept = tf.where(short > budget, short, tf.maximum(short, budget - short))
    both_cut = short + long_kept > budget
    short_kept = tf.where(both_cut, budget // 2, short)
    long_kept = tf.where(both_cut, budget // 2 + budget % 2, long_kept)
    first = tf.where(swap, long_kept, short_kept)
    second = tf.where(swap, short_kept, long_kept)
    return [tf.where(over, first, n1), tf.where(over, second, n2)]


def truncate_rows(rows: tf.RaggedTensor, keep: tf.Tensor, side: str) -> tf.RaggedTensor:
    """Keep the first (side "right") or last ("left") `keep[i]` values of each row."""
    ids = row_ids(rows)
    position = positions_in_rows(rows, ids)
    if side == "right":
        return mask_values(rows, position < tf.gather(keep, ids))
    lengths = tf.cast(rows.row_lengths(), tf.int32)
    return mask_values(rows, position >= tf.gather(lengths - keep, ids))


# Early stop for long single texts. Where every normalizer is local to a character and the
# pre-tokenizer splits at every whitespace character and drops it, a text cut just before an
# ASCII whitespace byte yields exactly the first tokens of the whole text: nothing before the
# cut depends on what follows it (whitespace composes and reorders with nothing, and is never
# inside an invalid UTF-8 subsequence). If the cut text already has a full budget of tokens,
# right truncation keeps the same tokens as for the whole text, whatever follows.
CHARACTER_LOCAL_NORMALIZERS = frozenset(
    {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents", "Strip"}
)
WHITESPACE_DROPPING_PRE_TOKENIZERS = frozenset(
    {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
)
IN_WORD_PRE_TOKENIZERS = frozenset({"Punctuation", "Digits"})
ASCII_WHITESPACE = (b" ", b"\t", b"\n", b"\r")
# Bytes of text per token of budget before a text is cut, and how far past that the cut may
# look for whitespace (beyond it the text is tokenized whole).
CUT_BYTES_PER_TOKEN = 64
CUT_SEARCH_BYTES = 4096


def _members(component: dict | None, key: str) -> list[dict]:
    if not component:
        return []
    if component.get("type") == "Sequence":
        return [m for member in component.get(key, []) for m in _members(member, key)]
    return [component]


def whitespace_cut_is_exact(document: dict) -> bool:
    """Whether cutting a text before ASCII whitespace keeps its first tokens (see above)."""
    normalizers = _members(document.get("normalizer"), "normalizers")
    pre_tokenizers = _members(document.get("pre_tokenizer"), "pretokenizers")
    types = {p.get("type") for p in pre_tokenizers}
    added = [token.get("content", "") for token in document.get("added_tokens") or []]
    model = document["model"]
    if model_type(model) == "WordLevel" and fails_on_unknown_words(model):
        return False  # an unknown word past the cut must still fail the call
    return (
        all(n.get("type") in CHARACTER_LOCAL_NORMALIZERS for n in normalizers)
        and bool(types & WHITESPACE_DROPPING_PRE_TOKENIZERS)
        and types <= WHITESPACE_DROPPING_PRE_TOKENIZERS | IN_WORD_PRE_TOKENIZERS
        and not any(any(c.isspace() for c in str(content)) for content in added)
    )


def cut_before_whitespace(text: tf.Tensor, min_bytes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Each text cut before its first ASCII whitespace byte at or after `min_bytes`, and
    whether it was cut (shorter texts, and those without such a byte soon after, stay whole)."""
    length = tf.strings.length(text)
    window = tf.strings.substr(
        text, tf.minimum(length, min_bytes), tf.fill(tf.shape(text), CUT_SEARCH_BYTES)
    )
    window_bytes = tf.strings.bytes_split(window)
    is_space = tf.reduce_any(
        tf.stack([window_bytes.values == space for space in ASCII_WHITESPACE]), axis=0
    )
    position = positions_in_rows(window_bytes)
    offset = tf.math.unsorted_segment_min(
        tf.where(is_space, position, CUT_SEARCH_BYTES),
        row_ids(window_bytes),
        tf.size(text),
    )
    cut = (length > min_bytes) & (offset < CUT_SEARCH_BYTES)
    end = tf.where(cut, min_bytes + offset, length)
    prefix = tf.strings.substr(text, tf.zeros_like(length), end)
    return prefix, cut
