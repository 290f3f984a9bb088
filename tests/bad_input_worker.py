"""Run the bad-input cases at one level, one JSON line per case, for tests/test_bad_input.py.

``python bad_input_worker.py LEVEL SETUP_JSON CASE...`` builds the level's target once
(``layer``: a TokenizerLayer; ``keras``: the pipeline models; ``tf2``: the exports through
``tf.saved_model.load(...).signatures``; ``tf1``: the exports through the TF1 ``serve``
loader), then prints ``{"event": "start"}`` before and the outcome after each case, flushed:
if a case kills the process, the parent knows which one did and restarts after it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PROSE = "hello wörld 안녕하세요 東京 Привет [MASK] tokenization, ok. 👍🏽 "
MEGABYTE = 1_000_000


def prose(size: int) -> bytes:
    """`size` bytes or a little more of repeated multilingual text."""
    return (PROSE * (size // len(PROSE.encode()) + 1)).encode()


INVALID_UTF8 = [
    b"\x80",  # lone continuation byte
    b"abc\x80\xbf def",  # continuation bytes inside a word
    b"ab\xe4\xbd",  # truncated 3-byte sequence at the end
    b"\xf0\x9f\x98 x",  # truncated 4-byte sequence before text
    b"\xed\xa0\x80",  # encoded surrogate U+D800
    b"\xed\xbf\xbf\xed\xb0\x80",  # encoded surrogate pair
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong 3-byte "/"
    b"\xf0\x80\x80\xaf",  # overlong 4-byte "/"
    b"\xff\xfe",  # bytes never valid in UTF-8
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"caf\xe9 [MA\xffSK]",  # Latin-1 text and a broken special token
]
CONTROLS = [b"\x00", b"a\x00b", b"\x01\x02\x1f\x7f", "\x85\x9f".encode(), b"x\x1b[31my\r\n\t"]


@dataclass(frozen=True)
class Case:
    """Inputs of one case; `text_pair` None means a single-text call."""

    text: Callable[[], object]
    text_pair: Callable[[], object] | None = None


def strings(*values: bytes) -> Callable[[], tf.Tensor]:
    return lambda: tf.constant(list(values), dtype=tf.string, shape=[len(values)])


CASES: dict[str, Case] = {
    "invalid_utf8": Case(strings(*INVALID_UTF8)),
    "invalid_utf8_pair": Case(strings(*INVALID_UTF8), strings(*INVALID_UTF8[::-1])),
    "nul_and_controls": Case(strings(*CONTROLS)),
    "empty_strings": Case(strings(b"", b"", b" ")),
    "empty_strings_pair": Case(strings(b"", b"a"), strings(b"", b"")),
    "empty_batch": Case(strings()),
    "empty_batch_pair": Case(strings(), strings()),
    "1mb_string": Case(strings(prose(MEGABYTE), b"short")),
    "10mb_string": Case(strings(prose(10 * MEGABYTE))),
    "10mb_one_word": Case(strings(b"a" * 10 * MEGABYTE)),
    "10mb_pair": Case(strings(b"a b " * (10 * MEGABYTE // 4)), strings(prose(MEGABYTE))),
    "scalar": Case(lambda: tf.constant("a scalar")),
    "batch_by_1": Case(lambda: tf.constant([["one"], ["two"]])),
    "batch_by_2": Case(lambda: tf.constant([["one", "two"]])),
    "scalar_text_pair": Case(strings(b"fine"), lambda: tf.constant("a scalar")),
    "int_text": Case(lambda: tf.constant([1, 2])),
    "float_text_pair": Case(strings(b"fine"), lambda: tf.constant([1.5])),
    "pair_batch_mismatch": Case(strings(b"one", b"two"), strings(b"one")),
}


def load_layer(setup: dict):
    from tfpipe import TokenizerLayer

    layer = TokenizerLayer.from_pretrained(setup["checkpoint"])
    return lambda text, text_pair: layer(text, text_pair=text_pair)


def load_keras(setup: dict):
    from tfpipe import pipeline

    single = pipeline("text-classification", setup["checkpoint"])
    pair = pipeline("text-classification", setup["checkpoint"], text_pair=True)

    def call(text, text_pair):
        if text_pair is None:
            return single({"text": text})
        return pair({"text": text, "text_pair": text_pair})

    return call


def load_tf2(setup: dict):
    single = tf.saved_model.load(setup["single"]).signatures["serving_default"]
    pair = tf.saved_model.load(setup["pair"]).signatures["serving_default"]
    return lambda text, text_pair: (
        single(text=text) if text_pair is None else pair(text=text, text_pair=text_pair)
    )


def tf1_session(export_dir: str, input_names: list[str]):
    """The TF1 ``serve`` loader with shapeless string placeholders mapped onto the signature
    inputs: like a model server, and unlike ``Session.run``, nothing checks shapes before
    the graph does."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        feeds = {name: tf.compat.v1.placeholder(tf.string, None, name=name) for name in input_names}
        input_map = {f"serving_default_{name}:0": feed for name, feed in feeds.items()}
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], export_dir, input_map=input_map
        )
    outputs = meta_graph.signature_def["serving_default"].outputs
    fetches = {name: tensor.name for name, tensor in outputs.items()}

    def run(**inputs) -> dict:
        feed = {feeds[name]: value.numpy() for name, value in inputs.items()}
        return session.run(fetches, feed_dict=feed)

    return run


def load_tf1(setup: dict):
    single = tf1_session(setup["single"], ["text"])
    pair = tf1_session(setup["pair"], ["text", "text_pair"])
    return lambda text, text_pair: (
        single(text=text) if text_pair is None else pair(text=text, text_pair=text_pair)
    )


LEVELS = {"layer": load_layer, "keras": load_keras, "tf2": load_tf2, "tf1": load_tf1}


def describe(outputs: dict) -> dict:
    """Shape, dtype and values of each output (outputs are at most batch × max_length)."""
    described = {}
    for name, value in outputs.items():
        array = value.to_list() if isinstance(value, tf.RaggedTensor) else np.asarray(value)
        if array.dtype == object:
            array = np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(array)
        described[name] = {
            "shape": list(array.shape),
            "dtype": "string" if array.dtype == object else array.dtype.name,
            "values": array.tolist(),
        }
    return described


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(call, case: Case) -> dict:
    text = case.text()
    text_pair = case.text_pair() if case.text_pair else None
    before, start = peak_rss_mb(), time.perf_counter()
    try:
        result = {"outcome": "ok", "outputs": describe(call(text, text_pair))}
    except Exception as error:  # the outcome under test
        result = {"outcome": "error", "error_type": type(error).__name__, "message": str(error)}
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_growth_mb"] = result["peak_rss_mb"] - before
    return result


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def main(argv: list[str]) -> int:
    level, setup_path, *names = argv
    with open(setup_path, encoding="utf-8") as file:
        call = LEVELS[level](json.load(file))
    emit({"event": "ready", "peak_rss_mb": peak_rss_mb()})
    for name in names:
        emit({"event": "start", "case": name})
        emit({"event": "done", "case": name, **run_case(call, CASES[name])})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
