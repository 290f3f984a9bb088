"""Comparing the layer's extra outputs (special-token masks, word and sequence ids, offsets)
with the HF fast tokenizer's: HF's rows, the layer's, and the inputs and checkpoints the
tests share (tests/test_word_ids.py, tests/test_offsets.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence

import numpy as np
from model_fixtures import load_hf_tokenizer
from parity import LayerRunner, layer_rows, python_text, split_by_hf_acceptance

ANNOTATED = dict(return_special_tokens_mask=True, return_word_ids=True)
FAMILIES = ("bert-base-cased", "roberta-base", "t5-small", "llama-2")
SHARED = (
    "albert-base-v2",
    "bert-base-cased",
    "bert-base-chinese",
    "bert-base-uncased",
    "deberta-v3-small",
    "distilbert-base-uncased",
    "gpt-neox-20b",
    "gpt2",
    "hf-fixture-test-sentencepiece",
    "hf-fixture-test-sentencepiece-bpe",
    "hf-fixture-test-sentencepiece-no-bos",
    "llama-2",
    "roberta-base",
    "t5-small",
)
# (padding, truncation, max_length, pad_to_multiple_of): the default run's combinations. One
# max_length: Unigram traces an encoder per word-token limit, which follows max_length.
MAX_LENGTH = 32
COMBOS = (
    ("longest", "longest_first", MAX_LENGTH, None),
    (False, "longest_first", MAX_LENGTH, None),
    ("max_length", "only_second", MAX_LENGTH, 8),
)
NO_NONE = -1


def hf_rows(hf, texts: Sequence, pairs: Sequence | None, **kwargs) -> dict[str, list]:
    """What HF returns with return_special_tokens_mask (and what `kwargs` ask for, such as
    return_offsets_mapping), plus word and sequence ids per row."""
    encoding = hf(
        [python_text(t) for t in texts],
        None if pairs is None else [python_text(t) for t in pairs],
        return_special_tokens_mask=True,
        **kwargs,
    )
    rows = {key: list(value) for key, value in encoding.items()}
    if "offset_mapping" in rows:
        rows["offset_mapping"] = [[list(span) for span in row] for row in rows["offset_mapping"]]
    none = lambda ids: [NO_NONE if i is None else i for i in ids]  # noqa: E731
    windows = range(len(rows["input_ids"]))  # one row per text, or per overflow window
    rows["word_ids"] = [none(encoding.word_ids(i)) for i in windows]
    rows["sequence_ids"] = [none(encoding.sequence_ids(i)) for i in windows]
    return rows


def mismatches(
    output: dict, want: dict, texts: Sequence, pairs: Sequence | None, padded: bool
) -> list[str]:
    """One line per problem: keys, dtype/density, shapes, then each row and key that differs."""
    got, problems = layer_rows(output, padded)
    if set(got) != set(want):
        problems.append(f"keys {sorted(got)}, HF returns {sorted(want)}")
    for key in sorted(set(got) & set(want)):
        if padded and texts and np.shape(got[key]) != np.shape(want[key]):
            problems.append(f"{key}: shape {np.shape(got[key])}, HF {np.shape(want[key])}")
        for i, (g, w) in enumerate(zip(got[key], want[key], strict=False)):
            if g != w:
                pair = "" if pairs is None else f" pair={python_text(pairs[i])!r:.80}"
                problems.append(
                    f"{key} of text[{i}]={python_text(texts[i])!r:.80}{pair}\n"
                    f"      HF    {w[:40]}\n      layer {g[:40]}"
                )
    return problems


def check_annotations(
    layer: LayerRunner,
    hf,
    texts: Sequence,
    pairs: Sequence | None = None,
    batch_size: int = 256,
    **hf_kwargs,
) -> None:
    """Every output of the layer equals HF's on every batch (HF call arguments ``hf_kwargs``)."""
    padded = hf_kwargs.get("padding", False) not in (False, "do_not_pad")
    problems = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        batch_pairs = None if pairs is None else list(pairs[start : start + batch_size])
        want = hf_rows(hf, batch, batch_pairs, **hf_kwargs)
        problems += mismatches(layer(batch, batch_pairs), want, batch, batch_pairs, padded)
    assert not problems, f"{len(problems)} problems; first 5:\n" + "\n".join(problems[:5])


def accepted(hf, texts: list, pairs: list | None, **hf_kwargs) -> tuple[list, list | None]:
    """The inputs HF encodes with ``hf_kwargs`` (only_* truncation refuses some)."""
    if hf_kwargs.get("truncation") not in ("only_first", "only_second"):
        return texts, pairs
    kept, _ = split_by_hf_acceptance(hf, texts, pairs, **hf_kwargs)
    return [texts[i] for i in kept], None if pairs is None else [pairs[i] for i in kept]


def tokenizer_pair(path, hf_tokenizer, tokenizer_layer, padding, extras=ANNOTATED, **config):
    """(LayerRunner with the `extras` options, HF tokenizer) on ``path``, both padding with the
    eos token when the checkpoint has no pad token and ``padding`` is set."""
    hf = hf_tokenizer(path)
    if padding and hf.pad_token is None:
        hf = load_hf_tokenizer(path)
        hf.pad_token = hf.eos_token
        config["pad_token"] = hf.eos_token
    return tokenizer_layer(path, padding=padding, **extras, **config), hf


def run_combo(path, hf_tokenizer, tokenizer_layer, texts, pairs, combo, extras=ANNOTATED) -> None:
    """Singles and pairs under `combo` (padding, truncation, max_length, pad_to_multiple_of),
    every output of a layer with `extras` against HF's."""
    padding, truncation, max_length, multiple = combo
    layer, hf = tokenizer_pair(
        path,
        hf_tokenizer,
        tokenizer_layer,
        padding,
        extras,
        truncation=truncation,
        max_length=max_length,
        pad_to_multiple_of=multiple,
    )
    kwargs = dict(
        padding=padding, truncation=truncation, max_length=max_length, pad_to_multiple_of=multiple
    )
    if extras.get("return_offsets_mapping"):
        kwargs["return_offsets_mapping"] = True
    for batch_pairs in (None, pairs):
        if truncation == "only_second" and batch_pairs is None:
            continue
        ok_texts, ok_pairs = accepted(hf, texts, batch_pairs, **kwargs)
        check_annotations(layer, hf, ok_texts, ok_pairs, **kwargs)


def edge_texts(hf) -> list[str | bytes]:
    """Added tokens typed in the text (special and not, glued to words and spaced), empty
    and blank strings, invalid UTF-8, a long text and a long word (early-stop paths)."""
    added = [token.content for token in hf.backend_tokenizer.get_added_tokens_decoder().values()]
    special = [token for token in added if token in hf.all_special_tokens][:3]
    plain = [token for token in added if token not in hf.all_special_tokens][:2]
    typed = [f"a{token}b  {token} c{token}" for token in special + plain]
    prose = "Hello, world! Naïve café; 東京 tokenization ok. "
    return [
        *typed,
        " ".join(special + plain) + "  end",
        "",
        " ",
        "\n\t  ",
        b"caf\xc3 \xff\xfe word \xe2\x82",
        prose * 60,
        "x" * 600 + " after the long word",
        "short",
    ]


def left_sided_copy(path, tmp_path, hf_tokenizer):
    """A copy of the checkpoint padding and truncating on the left."""
    folder = tmp_path / path.name
    folder.mkdir()
    shutil.copy(path / "tokenizer.json", folder / "tokenizer.json")
    config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    pad = config.get("pad_token") or hf_tokenizer(path).eos_token
    config.update(padding_side="left", truncation_side="left", pad_token=pad)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


FULL_COMBOS = [
    (padding, truncation, max_length, multiple)
    for padding in ("longest", "max_length", False)
    for truncation in ("longest_first", "only_first", "only_second", False)
    for max_length, multiple in ((24, None), (64, 8))
    # HF returns unequal rows there, which no tensor holds (docs/how-it-works.md, edges).
    if not (padding == "max_length" and truncation is False)
]


def served_and_expected(path, extras: dict, hf, tmp_path) -> tuple[dict, dict]:
    """A text/text_pair model of a layer with `extras` on `path` exported by tfpipe.export
    (op audit, and a TensorFlow-only process loading it with the TF1 `serve` loader): what
    that process served for a few edge pairs, and what HF returns for them."""
    import tensorflow as tf
    import tf_keras

    from tfpipe import TokenizerLayer
    from tfpipe.export import export

    layer = TokenizerLayer.from_pretrained(path, max_length=16, **extras)
    inputs = {
        name: tf_keras.Input(shape=(), dtype=tf.string, name=name) for name in ("text", "text_pair")
    }
    model = tf_keras.Model(inputs, layer(inputs["text"], text_pair=inputs["text_pair"]))
    texts = ["Hello <mask> world, a long enough sentence to be truncated here", "", "x é"]
    pairs = ["a pair", "b\xe9", "<s> c d e"]
    exported = export(
        model,
        tmp_path / "extras" / "1",
        warmup_texts=texts,
        warmup_text_pairs=pairs,
        serving_base_path=None,
    )
    options = {"return_offsets_mapping": True} if extras.get("return_offsets_mapping") else {}
    want = hf_rows(hf, texts, pairs, padding="longest", truncation=True, max_length=16, **options)
    return exported.served_outputs, want
