"""The tokenizer layers' shared core: options, the compiled tokenizer, and the call.

`TokenizerCore` holds no Keras: `tfpipe.TokenizerLayer` (tf-keras) and
`tfpipe.keras.TokenizerLayer` (Keras 3) both derive from it, so the two compute the same
graph: what `hf_tokenizer(texts, padding=..., truncation=..., max_length=...)` returns —
input_ids, attention_mask and, when the checkpoint's tokenizer returns them, token_type_ids
— computed with core TensorFlow ops only, so either layer can be saved in a SavedModel and
served by stock TF Serving.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Self

import tensorflow as tf

from tfpipe.tokenization.checkpoint import NO_LIMIT, load_reference, pad_token_id
from tfpipe.tokenization.compiled import compiled_tokenizer
from tfpipe.tokenization.layer_inputs import (
    check_same_batch,
    check_text_batch,
    padding_mode,
    truncation_strategy,
)
from tfpipe.tokenization.layer_outputs import (
    OFFSET_UNITS,
    Extras,
    Layout,
    Sequence,
    extra_outputs,
    output_names,
)
from tfpipe.tokenization.overflow import check_stride
from tfpipe.tokenization.padding import Padding
from tfpipe.tokenization.ragged_ops import INT32_MAX, replace_rows, select
from tfpipe.tokenization.truncation import (
    CUT_BYTES_PER_TOKEN,
    CUT_SEARCH_BYTES,
    cut_before_whitespace,
    keep_lengths,
    truncate_rows,
)


class TokenizerCore:
    """Strings in, the HF tokenizer's ids and masks out (core TF ops only).

    A mixin of the tokenizer layers: `_configure` takes the tokenizer.json text and
    settings so `get_config`/`from_config` can rebuild a layer without the original files.
    Layers of one tokenizer.json share its pipeline and encoders (`compiled.py`).
    """

    def _init_layer(self, base_init, tokenizer_json: str, settings: dict, options: dict) -> None:
        """A layer's __init__: ``base_init`` (its Keras base class's) with the Keras
        arguments among ``options`` (not trainable by default), then `_configure`."""
        tokenizer_options, layer_options = split_options(options)
        layer_options.setdefault("trainable", False)
        base_init(**layer_options)
        self._configure(tokenizer_json, settings, **tokenizer_options)

    def _configure(
        self,
        tokenizer_json: str,
        settings: dict,
        max_length: int | None = None,
        padding: str | bool = "longest",
        truncation: str | bool = True,
        pad_to_multiple_of: int | None = None,
        return_token_type_ids: bool | None = None,
        pad_token: str | None = None,
        return_special_tokens_mask: bool = False,
        return_word_ids: bool = False,
        return_overflowing_tokens: bool = False,
        stride: int = 0,
        return_offsets_mapping: bool = False,
        offset_unit: str = "char",
    ) -> None:
        """Set every option and take the compiled tokenizer (the layers' __init__ calls it
        after their base class's, so tf-keras and Keras 3 track the pipeline's tables)."""
        self.tokenizer_json = tokenizer_json
        # Kept as JSON text: tf-keras wraps dict attributes in trackable wrappers that do not
        # serialise back to JSON.
        self._settings_json = json.dumps(dict(settings))
        self.padding = padding_mode(padding)
        self.truncation = truncation_strategy(truncation)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.requested_max_length = max_length
        self.max_length = self._resolve_max_length(max_length)
        names = self.settings["model_input_names"]
        self.return_token_type_ids = (
            "token_type_ids" in names if return_token_type_ids is None else return_token_type_ids
        )
        self.return_attention_mask = "attention_mask" in names
        # HF users set `tokenizer.pad_token = tokenizer.eos_token` when a checkpoint has none.
        self.pad_token = pad_token
        self.pad_token_id = (
            self.settings["pad_token_id"]
            if pad_token is None
            else pad_token_id(tokenizer_json, pad_token)
        )
        self._padding = self._padding_settings()
        if offset_unit not in OFFSET_UNITS:
            raise ValueError(f"offset_unit must be one of {OFFSET_UNITS}, got {offset_unit!r}")
        self.offset_unit = offset_unit
        compiled = compiled_tokenizer(tokenizer_json)
        # A plain attribute: the layer holds the memo entry alive; tf.Module tracking (and so
        # SavedModel export) goes through the pipeline and encoders below.
        self._compiled = compiled
        self.pipeline = compiled.pipeline
        truncated_length = self.max_length if self.truncation else None
        # Set before the early-stop limits below: windows and offsets need every token.
        self.extras = Extras(
            special_tokens_mask=bool(return_special_tokens_mask),
            word_ids=bool(return_word_ids),
            offsets=bool(return_offsets_mapping),
            overflowing=bool(return_overflowing_tokens),
            stride=check_stride(stride, truncated_length, self._specials()),
        )
        self._cut_bytes = self._early_stop_bytes(compiled.whitespace_cut_is_exact)
        self._encode, self._encode_limited = self._encoders(compiled)

    def _encoders(self, compiled) -> tuple:
        """(encoder, encoder stopping long words early): with offsets one encoder carrying
        them (offsets.py), with word ids one packing them (word_index.py), else ids alone."""
        if self.extras.offsets:
            encoder = compiled.offsets_encoder(self.offset_unit)
            return encoder, encoder
        words = self.extras.words
        limited = compiled.encoder(self._word_token_limit(), with_words=words)
        return compiled.encoder(with_words=words), limited

    @property
    def return_special_tokens_mask(self) -> bool:
        return self.extras.special_tokens_mask

    @property
    def return_word_ids(self) -> bool:
        return self.extras.word_ids

    @property
    def return_overflowing_tokens(self) -> bool:
        return self.extras.overflowing

    @property
    def return_offsets_mapping(self) -> bool:
        return self.extras.offsets

    @property
    def stride(self) -> int:
        return self.extras.stride

    def _padding_settings(self) -> Padding | None:
        if not self.padding:
            return None
        if self.pad_token_id is None:
            raise ValueError(self._no_pad_token_message())
        return Padding(
            strategy=self.padding,
            pad_id=self.pad_token_id,
            pad_type_id=self.settings["pad_token_type_id"],
            left=self.settings["padding_side"] == "left",
            max_length=self.max_length,
            multiple=self.pad_to_multiple_of,
        )

    def _no_pad_token_message(self) -> str:
        """HF's error, plus the option that fixes it and the token HF users usually pick."""
        eos = self.settings.get("eos_token")
        example = f"e.g. pad_token={eos!r} (its eos token)" if eos else "a token of its vocabulary"
        return (
            "Asking to pad but the tokenizer does not have a padding token: "
            f"set pad_token, {example}"
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, **options) -> Self:
        """Compile the tokenizer of a checkpoint folder (or a tokenizer.json file)."""
        tokenizer_json, settings = load_reference(path)
        return cls(tokenizer_json, settings, **options)

    def _resolve_max_length(self, max_length: int | None) -> int | None:
        """transformers' rule: an unset max_length means the checkpoint's model_max_length."""
        limit = self.settings["model_max_length"]
        if max_length is None and (self.truncation or self.padding == "max_length"):
            max_length = limit if limit < NO_LIMIT else None
            if max_length is None and self.padding == "max_length":
                raise ValueError(
                    "padding='max_length' needs max_length: the checkpoint sets no model_max_length"
                )
        multiple = self.pad_to_multiple_of
        if self.truncation and max_length is not None and multiple and max_length % multiple:
            raise ValueError(
                f"Truncation and padding are both activated but truncation length "
                f"({max_length}) is not a multiple of pad_to_multiple_of ({multiple})."
            )
        return max_length

    def _early_stop_bytes(self, whitespace_cut_is_exact: bool) -> int | None:
        """Where long single texts are cut before encoding, when that is exact: right
        truncation of a first sequence to a real budget, a whitespace-cut-safe tokenizer."""
        budget = self._budget(pair=False)
        if (
            budget is None
            or budget <= 0
            or self.extras.overflowing
            or self.extras.offsets
            or self.truncation not in ("longest_first", "only_first")
            or self.settings["truncation_side"] != "right"
            or not whitespace_cut_is_exact
            # Byte offsets are int32: no text is long enough to be cut there.
            or budget * CUT_BYTES_PER_TOKEN > INT32_MAX - CUT_SEARCH_BYTES
        ):
            return None
        return budget * CUT_BYTES_PER_TOKEN

    def _word_token_limit(self) -> int | None:
        """How many tokens of a long word a right-truncated sequence can use, when the
        model can stop early inside words (Unigram): the single-text budget, which no
        sequence's budget exceeds."""
        budget = self._budget(pair=False)
        if (
            budget is None
            or budget <= 0
            or self.extras.overflowing
            or self.extras.offsets
            or self.settings["truncation_side"] != "right"
            or not self.pipeline.limits_word_tokens
        ):
            return None
        return budget

    def _budget(self, pair: bool) -> int | None:
        """Tokens the sequences may keep, or None when nothing is truncated."""
        if not self.truncation or self.max_length is None:
            return None
        special = self._specials(pair)
        # tokenizers computes max_length - specials unsigned: a negative budget wraps around
        # to "unlimited" and nothing is truncated. Token counts are int32 in the graph, so a
        # larger budget is the same as the largest int32.
        if self.max_length < special:
            return None
        return min(self.max_length - special, INT32_MAX)

    def _specials(self, pair: bool = False) -> int:
        return self.pipeline.post_processor.num_special_tokens(pair=pair)

    def _encode_single(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Encode single texts; in a batch holding a long one, texts are cut first where that
        is exact (`_early_stop_bytes`), so a 10 MB text costs about what its first tokens
        cost. The encoder runs once, outside the conds: only the cut and the re-encoding of
        texts cut short are skipped by batches of short texts (their untaken branches are
        visited as dead, which for a second encoder cost a measurable share of a call)."""
        if self.truncation not in ("longest_first", "only_first"):
            return self._encode(text)
        if self._cut_bytes is None:
            return self._encode_limited(text)
        has_long_text = tf.reduce_any(tf.strings.length(text) > self._cut_bytes)
        prefix, cut = tf.cond(
            has_long_text,
            lambda: cut_before_whitespace(text, self._cut_bytes),
            lambda: (text, tf.zeros_like(text, tf.bool)),
        )
        ids = self._encode(prefix)
        budget = self._cut_bytes // CUT_BYTES_PER_TOKEN
        short = cut & (tf.cast(ids.row_lengths(), tf.int32) < budget)

        def encode_short_texts_whole() -> tf.RaggedTensor:
            return replace_rows(ids, short, self._encode(select(text, short)))

        return tf.cond(tf.reduce_any(short), encode_short_texts_whole, lambda: ids)

    def tokenize(self, text, text_pair=None) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        """The HF tokenizer's outputs for a batch of texts (and pairs): the layers' call."""
        text = check_text_batch(text, "text")
        if text_pair is None:
            sequences = [self._encode_single(text)]
        else:
            text, text_pair = check_same_batch(text, check_text_batch(text_pair, "text_pair"))
            sequences = self._encode_pair(text, text_pair)
        if self.extras:
            encoded = [Sequence.unpacked(s, self.extras) for s in sequences]
            kept, checks = self._kept_lengths([s.ids for s in encoded])
            return self._extra_outputs(encoded, kept, checks)
        kept, checks = self._kept_lengths(sequences)
        with tf.control_dependencies(checks):
            if self._padding is None:
                ids, type_ids, mask = self._unpadded(sequences, kept)
            else:
                keep_last = self.settings["truncation_side"] == "left"
                ids, type_ids, mask = self.pipeline.post_processor.padded(
                    sequences, kept, keep_last, self._padding
                )
        outputs = {"input_ids": ids}
        if self.return_token_type_ids:
            outputs["token_type_ids"] = type_ids
        if self.return_attention_mask:
            outputs["attention_mask"] = mask
        return outputs

    def _encode_pair(self, text: tf.Tensor, text_pair: tf.Tensor) -> list[tf.RaggedTensor]:
        """Both sequences, each truncated one allowed to stop early inside long words.

        Truncating one sequence alone (only_first/only_second) keeps a length that depends
        only on the other's. longest_first keeps what depends on a long sequence's length
        only through whether it is the longer of two long ones, which decides who gets the
        odd token of an odd budget: with an even budget both sequences may stop early.
        """
        budget = self._budget(pair=True)
        if budget is None:
            return [self._encode(text), self._encode(text_pair)]
        both = self.truncation == "longest_first" and budget % 2 == 0
        first = self._encode_limited if both or self.truncation == "only_first" else self._encode
        second = (
            self._encode_limited if both or self.truncation == "only_second" else self._encode
        )
        return [first(text), second(text_pair)]

    def _kept_lengths(
        self, sequences: list[tf.RaggedTensor]
    ) -> tuple[list[tf.Tensor], list[tf.Operation]]:
        """Each sequence's per-row length after truncation, and the checks raising HF's
        truncation errors."""
        lengths = [tf.cast(s.row_lengths(), tf.int32) for s in sequences]
        budget = self._budget(pair=len(sequences) == 2)
        if budget is None:
            return lengths, []
        return keep_lengths(lengths, budget, self.truncation)

    def _unpadded(
        self, sequences: list[tf.RaggedTensor], kept: list[tf.Tensor]
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Ragged (ids, type ids, attention mask): truncated rows placed in the template."""
        side = self.settings["truncation_side"]
        if self._budget(pair=len(sequences) == 2) is not None:
            sequences = [truncate_rows(s, k, side) for s, k in zip(sequences, kept, strict=True)]
        ids, type_ids = self.pipeline.post_processor(sequences)
        return ids, type_ids, ids.with_values(tf.ones_like(ids.values))

    def _extra_outputs(self, sequences, kept, checks) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        """`call` with any of the extra outputs (layer_outputs.py)."""
        pair = len(sequences) == 2
        layout = Layout(
            post_processor=self.pipeline.post_processor,
            padding=self._padding,
            budget=self._budget(pair=pair),
            left=self.settings["truncation_side"] == "left",
            names=output_names(self.extras, self.return_token_type_ids),
            trimmer=self._compiled.offset_trimmer if self.extras.offsets else None,
        )
        outputs = extra_outputs(sequences, kept, checks, self.extras, layout)
        if not self.return_attention_mask:
            del outputs["attention_mask"]
        return outputs

    def tokenizer_config(self) -> dict:
        """The options `_configure` takes, for the layers' get_config."""
        return dict(
            tokenizer_json=self.tokenizer_json,
            settings=self.settings,
            max_length=self.requested_max_length,
            padding=self.padding or False,
            truncation=self.truncation or False,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_token_type_ids=self.return_token_type_ids,
            pad_token=self.pad_token,
            return_special_tokens_mask=self.extras.special_tokens_mask,
            return_word_ids=self.extras.word_ids,
            return_overflowing_tokens=self.extras.overflowing,
            stride=self.extras.stride,
            return_offsets_mapping=self.extras.offsets,
            offset_unit=self.offset_unit,
        )

    @property
    def settings(self) -> dict:
        """transformers-level settings: model_max_length, sides, pad and eos tokens, input names."""
        return json.loads(self._settings_json)

    @property
    def model_input_names(self) -> list[str]:
        return list(self.settings["model_input_names"])



def split_options(options: dict) -> tuple[dict, dict]:
    """(the tokenizer's options, the rest): a layer passes the rest, `name` say, to its
    Keras base class, which also refuses unknown ones as before."""
    accepted = inspect.signature(TokenizerCore._configure).parameters
    tokenizer = {key: value for key, value in options.items() if key in accepted}
    return tokenizer, {key: value for key, value in options.items() if key not in accepted}
