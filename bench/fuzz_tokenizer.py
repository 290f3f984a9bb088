"""Fuzz TokenizerLayer and DetokenizerLayer against the HF fast tokenizer: random texts and
pairs, and their ids (plus random ids) decoded back, exact comparison.

For each tokenizer, batches of generated inputs — random code points from every plane,
whitespace runs and newlines, long runs of one character (markdown tables), digit runs
(with superscript and Arabic-Indic digits), contractions, emoji sequences with modifiers and
joiners, combining marks, the tokenizer's own special and added tokens, and cut-and-spliced
course text — are encoded by both with padding="longest", truncation and max_length=64, singles
and pairs (ids, masks, type ids, special_tokens_mask, word_ids, sequence_ids and
offset_mapping), again as overflow windows (singles, and question-answering pairs: a short
question, the text as context, only_second, a stride), and the singles' ids and as many rows
of random ids are decoded by both (`batch_decode`, special tokens kept and skipped in turn),
until the time budget runs out.
Every differing text is a bug: it is printed and written to `--failures` (JSON lines) so it
can become a regression test.

    .venv/bin/python bench/fuzz_tokenizer.py --seconds 60 --write-docs
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import tensorflow as tf
from _common import (
    BENCHMARKS_DOC,
    SHARED,
    load_texts,
    markdown_table,
    package_version,
    replace_block,
    today,
)

from tfpipe import DetokenizerLayer, TokenizerLayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import trained_tokenizers  # noqa: E402

# Tokenizers trained at run time from the recipes the parity tests use.
TRAINED = {
    "trained-llama-3-split": trained_tokenizers.train_llama_3_split,
    "trained-falcon-style": trained_tokenizers.train_falcon_style,
    "trained-prefix-space-byte-level": trained_tokenizers.train_punctuation_prefix_space_byte_level,
    "trained-whitespace-replace": trained_tokenizers.train_whitespace_replace,
    "trained-boundary-split": trained_tokenizers.train_boundary_split,
    "trained-space-run-tokens": trained_tokenizers.train_space_run_tokens,
    "trained-word-level": trained_tokenizers.train_word_level,
    "trained-unicode-scripts": trained_tokenizers.train_unicode_scripts,
    "trained-byte-level-normalizer": trained_tokenizers.train_byte_level_normalizer,
}

MAX_LENGTH = 64
EXTRAS = dict(return_special_tokens_mask=True, return_word_ids=True, return_offsets_mapping=True)
# Overflow windows of singles, and of question-answering pairs (a short question first).
WINDOWS = dict(return_overflowing_tokens=True, stride=8, max_length=24)
QA = dict(return_overflowing_tokens=True, stride=8, max_length=48, truncation="only_second")
DEFAULT_TOKENIZERS = (
    "bert-base-cased", "roberta-base", "gpt2", "t5-small", "albert-base-v2", "llama-2",
    *TRAINED,
)
WHITESPACE = " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2009\u200b\u2028\u3000"
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'")
EMOJI = ("👍", "🏽", "\u200d", "\ufe0f", "👨", "👩", "👧", "🤗", "🇫", "🇷", "❤")
MARKS = ("\u0301", "\u0308", "\u0323", "\u0345", "\u093f", "\u0e31", "\u302a")
PLANES = ((0x20, 0x7F), (0x80, 0x2FF), (0x300, 0x36F), (0x370, 0x1FFF), (0x2000, 0x2BFF),
          (0x3000, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFFFF), (0x10000, 0x10FFFF))
class TextGenerator:
    """Random texts dense in what tokenizers get wrong."""

    def __init__(self, seed: int, corpus: list[str], specials: list[str]) -> None:
        self.rng = random.Random(seed)
        self.corpus = corpus
        self.specials = specials or ["<s>"]

    def text(self) -> str:
        parts = [self._part() for _ in range(self.rng.randint(0, 8))]
        return "".join(parts)

    def _part(self) -> str:
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:
            return "".join(self._codepoint() for _ in range(rng.randint(1, 12)))
        if kind == 1:
            return "".join(rng.choices(WHITESPACE, k=rng.randint(1, 5)))
        if kind == 2:
            return rng.choice(("I", "we", "don", "X", "it")) + rng.choice(CONTRACTIONS)
        if kind == 3:
            return "".join(rng.choices(EMOJI + MARKS, k=rng.randint(1, 6)))
        if kind == 4:
            return rng.choice(self.specials)
        if kind == 5 and self.corpus:
            line = rng.choice(self.corpus)
            start = rng.randrange(max(len(line), 1))
            return line[start : start + rng.randint(1, 80)]
        if kind == 7:
            return rng.choice(" \t|-") * rng.randint(1, 40)
        if kind == 8:
            return "".join(rng.choices("0123456789²³¹٣", k=rng.randint(1, 12)))
        return rng.choice(("1234567", "3.14", "x1y22z333", "e-mail", "URL:", "naïve", "ǅ"))

    def _codepoint(self) -> str:
        low, high = self.rng.choice(PLANES)
        point = self.rng.randint(low, high)
        return " " if 0xD800 <= point < 0xE000 else chr(point)


def checkpoint(name: str, texts: list[str], scratch: Path) -> Path:
    """A shared checkpoint's folder, or a `trained-*` recipe of tests/trained_tokenizers.py
    trained on `texts` and saved under `scratch`."""
    if name in TRAINED:
        tok, config = TRAINED[name](texts[:5000])
        return trained_tokenizers.save_checkpoint(tok, config, scratch / name)
    return SHARED / "tokenizers" / name


def fuzz(name: str, path: Path, seconds: float, corpus: list[str], seed: int, failures):
    """(inputs tried, mismatching inputs) for one tokenizer within the time budget."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    pad = hf.pad_token is not None
    options = dict(padding="longest" if pad else False, truncation=True, max_length=MAX_LENGTH)
    layers = {
        "plain": (encoder(path, options), options),
        "windows": (encoder(path, {**options, **WINDOWS}), {**options, **WINDOWS}),
        "qa": (encoder(path, {**options, **QA}), {**options, **QA}),
    }
    specials = [t.content for t in hf.added_tokens_decoder.values()]
    generate = TextGenerator(seed, corpus, specials)
    decoders = decoders_of(path)
    tried = wrong = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        texts = [generate.text() for _ in range(64)]
        partners = [generate.text() for _ in range(64)]
        questions = [text[:12] for text in partners]
        for (layer, layer_options), inputs, pairs in (
            (layers["plain"], texts, None),
            (layers["plain"], texts, partners),
            (layers["windows"], texts, None),
            (layers["qa"], questions, texts),
        ):
            for index, problem in compare(layer, hf, inputs, pairs, layer_options):
                wrong += 1
                record = {"tokenizer": name, "text": inputs[index], "problem": problem,
                          "pair": None if pairs is None else pairs[index]}
                print(json.dumps(record, ensure_ascii=False)[:500], file=sys.stderr)
                failures.write(json.dumps(record, ensure_ascii=False) + "\n")
            tried += len(texts)
        skip = tried % 2 == 1
        for ids in decode_mismatches(hf, decoders[skip], texts, generate.rng, skip):
            wrong += 1
            record = {"tokenizer": name, "ids": ids, "problem": "decode",
                      "skip_special_tokens": skip}
            print(json.dumps(record)[:500], file=sys.stderr)
            failures.write(json.dumps(record) + "\n")
        tried += 2 * len(texts)
    return tried, wrong


def encoder(path: Path, options: dict):
    """The layer with every extra output, in tf.functions for singles and pairs."""
    layer = TokenizerLayer.from_pretrained(str(path), **EXTRAS, **options)
    spec = tf.TensorSpec([None], tf.string)
    return {
        False: tf.function(lambda t: layer(t), input_signature=[spec]),
        True: tf.function(lambda t, p: layer(t, text_pair=p), input_signature=[spec, spec]),
    }


def compare(layer, hf, texts: list[str], pairs: list[str] | None, options: dict):
    """(row, problem) for every row that differs; where HF refuses the batch (raises, or
    panics on a stride), the layer must raise InvalidArgumentError."""
    try:
        want = expected(hf, texts, pairs, options)
    except BaseException as error:  # noqa: BLE001 - a Rust panic is a BaseException
        if isinstance(error, KeyboardInterrupt):
            raise
        want = None
    inputs = [tf.constant(texts)] + ([] if pairs is None else [tf.constant(pairs)])
    try:
        got = layer[pairs is not None](*inputs)
    except tf.errors.InvalidArgumentError:
        if want is not None:
            yield 0, "the layer raised where HF did not"
        return
    if want is None:
        yield 0, "HF raised where the layer did not"
        return
    yield from mismatches(got, want)


def expected(hf, texts: list[str], pairs: list[str] | None, options: dict) -> dict:
    """HF's outputs with every extra (offsets as lists), plus each row's word_ids and
    sequence_ids (None as -1, as the layer returns them)."""
    encoding = hf(texts, pairs, return_special_tokens_mask=True, return_offsets_mapping=True,
                  **options)
    rows = dict(encoding)
    rows["offset_mapping"] = [[list(span) for span in row] for row in rows["offset_mapping"]]
    for key in ("word_ids", "sequence_ids"):
        ids = [getattr(encoding, key)(i) for i in range(len(rows["input_ids"]))]
        rows[key] = [[-1 if i is None else i for i in row] for row in ids]
    return rows


def decoders_of(path: Path) -> dict[bool, object]:
    """DetokenizerLayer graphs over ragged ids, by skip_special_tokens."""
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)
    graphs = {}
    for skip in (False, True):
        layer = DetokenizerLayer.from_pretrained(str(path), skip_special_tokens=skip)
        graphs[skip] = tf.function(layer.__call__, input_signature=[spec])
    return graphs


def decode_mismatches(hf, decode, texts: list[str], rng: random.Random, skip: bool):
    """Id rows whose decoding differs: the texts' ids and as many rows of random ids."""
    rows = hf(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    size = len(hf)  # 17 ms: transformers builds the whole vocabulary for it
    rows += [[rng.randrange(size) for _ in range(rng.randrange(24))] for _ in texts]
    ours = decode(tf.ragged.constant(rows, dtype=tf.int32, row_splits_dtype=tf.int64))
    theirs = hf.batch_decode(rows, skip_special_tokens=skip)
    for ids, got, want in zip(rows, ours.numpy(), theirs, strict=True):
        if got.decode() != want:
            yield ids


def mismatches(got: dict, want):
    """(row, key) for every row whose outputs differ."""
    for key in want:
        if key not in got:
            yield 0, f"missing {key}"
            continue
        value = got[key]
        rows = value.to_list() if isinstance(value, tf.RaggedTensor) else value.numpy().tolist()
        theirs = [item if isinstance(item, int) else list(item) for item in want[key]]
        if len(rows) != len(theirs):
            yield 0, f"{key}: {len(rows)} rows, HF {len(theirs)}"
            continue
        for index, (ours, row) in enumerate(zip(rows, theirs, strict=True)):
            if ours != row:
                yield index, key


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers", nargs="+", default=list(DEFAULT_TOKENIZERS))
    parser.add_argument("--seconds", type=float, default=60.0, help="budget per tokenizer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", type=Path,
                        default=Path(__file__).parent / "results" / "fuzz-failures.jsonl")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    corpus, source = load_texts(None)
    rows, total_wrong = [], 0
    args.failures.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, args.failures.open("w") as failures:
        for name in args.tokenizers:
            path = checkpoint(name, corpus, Path(scratch))
            if not path.exists():
                print(f"{name}: no checkpoint at {path}, skipped", file=sys.stderr)
                continue
            started = time.monotonic()
            tried, wrong = fuzz(name, path, args.seconds, corpus, args.seed, failures)
            total_wrong += wrong
            elapsed = time.monotonic() - started
            rows.append([name, f"{elapsed:.0f} s", f"{tried:,}", f"{wrong:,}"])
            print(f"{name}: {tried} inputs, {wrong} mismatches", flush=True)
    table = markdown_table(
        ["tokenizer", "time", "inputs (singles, pairs, windows, decoded rows)", "mismatches"], rows
    )
    summary = (
        f"Fuzzing against the HF fast tokenizer (padding, truncation, max_length={MAX_LENGTH}; "
        f"generated texts plus fragments of {source}).\n\n"
        f"- Date: {today()}; command: `bench/fuzz_tokenizer.py --seconds {args.seconds:g}"
        f" --seed {args.seed}`; tokenizers {package_version('tokenizers')}, transformers "
        f"{package_version('transformers')}\n\n{table}"
    )
    print(summary)
    if args.write_docs:
        replace_block(BENCHMARKS_DOC, "fuzz", summary)
    return int(total_wrong > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
