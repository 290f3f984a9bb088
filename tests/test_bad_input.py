"""Bad input never crashes or hangs: the matrix of docs/bad-input.md, at four levels.

Levels: ``layer`` (TokenizerLayer, MiniLM tokenizer), ``keras`` (the pipeline models),
``tf2`` (the exports' ``serving_default`` through ``tf.saved_model.load``) and ``tf1`` (the
exports through the TF1 ``serve`` loader, fed through shapeless placeholders so that, as in a
model server, nothing checks shapes before the graph does).

Each level runs its cases in one worker subprocess (tests/bad_input_worker.py) that reports
each case as it starts and ends. A case that kills the worker is reported as crashed and the
worker restarts after it; one that runs past CASE_SECONDS is reported as hung. Tradeoff: one
process per level instead of per case saves ~15 s of TensorFlow start-up and model loading
per case, while a crash still fails exactly the case that caused it.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from bad_input_worker import CASES
from model_fixtures import (
    classifier_checkpoint,
    exported_classifier,
    exported_pair_classifier,
    hf_tokenizer,
)
from parity import python_text
from samples import slow_beyond

WORKER = Path(__file__).with_name("bad_input_worker.py")
LEVELS = ("layer", "keras", "tf2", "tf1")
SETUP_SECONDS = 300
CASE_SECONDS = 120
# Measured on 2 cores: ≤ 2.1 s and ≤ 0.5 GB of peak RSS growth for each 10 MB case.
LARGE_CASE_SECONDS = 30
LARGE_CASE_RSS_GROWTH_MB = 1024
LARGE_CASES = ("1mb_string", "10mb_string", "10mb_one_word", "10mb_pair")
# Run only when a selected test needs them (tests marked slow: make test-full).
TEN_MEGABYTE_CASES = ("10mb_string", "10mb_one_word", "10mb_pair")
LABELS = 3

ROWS = {
    "invalid_utf8": 12,
    "invalid_utf8_pair": 12,
    "nul_and_controls": 5,
    "empty_strings": 3,
    "empty_strings_pair": 2,
    "empty_batch": 0,
    "empty_batch_pair": 0,
    "1mb_string": 2,
    "10mb_string": 1,
    "10mb_one_word": 1,
    "10mb_pair": 1,
}


@dataclass(frozen=True)
class Raises:
    """An expected error: its type and a pattern its message must match."""

    types: tuple[str, ...]
    pattern: str


def must_be_1d(name: str) -> Raises:
    """Eager: "text must be a 1-D batch…"; graph: the node "…/text.must_be_a_1-D_batch"."""
    return Raises(("InvalidArgumentError",), rf"(?<![\w.]){name}[ .]must[ _]be[ _]a[ _]1-D")


def wrong_dtype(level: str, name: str) -> Raises:
    dtype = "int32" if name == "text" else "float"
    return {
        "layer": Raises(("TypeError",), rf"\b{name} must be a tf.string tensor"),
        # tf-keras casts inputs to the declared dtype first; its message lists them.
        "keras": Raises(("UnimplementedError",), rf"'{name}': 'tf.Tensor\(shape=\(\d+,\), dtype="),
        "tf2": Raises(
            ("InvalidArgumentError",),
            rf"input #{int(name == 'text_pair')}\(zero-based\) was expected to be a string "
            rf"tensor but is a {dtype} tensor",
        ),
        # The TF1 Python client converts feeds to the placeholder's dtype before the graph.
        "tf1": Raises(("InternalError",), "Unsupported object type"),
    }[level]


def expected(level: str, case: str) -> int | Raises:
    """Rows of the outputs, or the error, for `case` at `level`."""
    if case in ROWS:
        return ROWS[case]
    if case == "batch_by_1" and level == "keras":
        return 2  # tf-keras squeezes a trailing dimension of 1 off a [batch] input
    if case in ("scalar", "batch_by_1", "batch_by_2"):
        return must_be_1d("text")
    if case == "scalar_text_pair":
        return must_be_1d("text_pair")
    if case in ("int_text", "float_text_pair"):
        return wrong_dtype(level, "text" if case == "int_text" else "text_pair")
    assert case == "pair_batch_mismatch"
    return Raises(("InvalidArgumentError",), "text and text_pair must have the same batch size")


def read_events(worker: subprocess.Popen, timeouts):
    """Worker events, one per line, until its output ends, or a "timeout" event when the
    next line takes longer than the next of `timeouts`."""
    selector = selectors.DefaultSelector()
    selector.register(worker.stdout, selectors.EVENT_READ)
    for timeout in timeouts:
        if not selector.select(timeout):
            yield {"event": "timeout"}
            return
        line = worker.stdout.readline()
        if not line:
            return
        yield json.loads(line)


def run_worker(level: str, setup: Path, names: list[str], results: dict) -> str | None:
    """Run `names` in one worker; record outcomes; return the case it died or hung in."""
    with tempfile.TemporaryFile("w+") as stderr:
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), level, str(setup), *names],
            stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=WORKER.parent,
        )
        current, hung = None, False
        timeouts = [SETUP_SECONDS] + [CASE_SECONDS] * (2 * len(names))
        for event in read_events(worker, timeouts):
            if event["event"] == "timeout":
                hung = True
                worker.kill()
            elif event["event"] == "start":
                current = event["case"]
            elif event["event"] == "done":
                results[current], current = event, None
        code = worker.wait()
        stderr.seek(0)
        tail = stderr.read()[-2000:]
    if current is None and (code != 0 or hung):
        pytest.fail(f"{level} worker failed outside any case (exit {code}):\n{tail}")
    if current is not None:
        results[current] = {"outcome": "hung" if hung else f"crashed (exit {code})", "log": tail}
    return current


def run_level(level: str, setup: Path, cases: list[str]) -> dict:
    """Each case's outcome at `level`, restarting the worker after a case that kills it."""
    results: dict = {}
    pending = list(cases)
    while pending:
        stopped_at = run_worker(level, setup, pending, results)
        if stopped_at is None:
            break
        pending = pending[pending.index(stopped_at) + 1 :]
    return results


@pytest.fixture(scope="module")
def setup_file(tmp_path_factory) -> Path:
    """Where the workers find the checkpoint and the two exports (built here, once)."""
    path = tmp_path_factory.mktemp("bad_input") / "setup.json"
    setup = {
        "checkpoint": str(classifier_checkpoint()),
        "single": str(exported_classifier().path),
        "pair": str(exported_pair_classifier().path),
    }
    path.write_text(json.dumps(setup))
    return path


@pytest.fixture(scope="module")
def outcomes(request, setup_file):
    """``outcomes(level)``: {case: outcome}, the level's worker run on first use; the 10 MB
    cases only when a selected test needs them."""
    cache: dict[str, dict] = {}
    large = any(item.path == request.path and item.get_closest_marker("slow")
                for item in request.session.items)
    cases = [case for case in CASES if large or case not in TEN_MEGABYTE_CASES]

    def get(level: str) -> dict:
        if level not in cache:
            start = time.perf_counter()
            cache[level] = run_level(level, setup_file, cases)
            print(f"{level}: {time.perf_counter() - start:.1f} s")
        return cache[level]

    return get


def output_rows(level: str, outputs: dict) -> set[int]:
    names = ["input_ids"] if level == "layer" else ["probabilities", "label", "score"]
    assert set(names) <= set(outputs)
    return {outputs[name]["shape"][0] for name in outputs}


def assert_output_structure(level: str, outputs: dict, rows: int) -> None:
    """Outputs have `rows` rows and the right rank/dtype; width 0 for an empty batch."""
    assert output_rows(level, outputs) == {rows}
    if level == "layer":
        for value in outputs.values():
            assert value["dtype"] == "int32" and len(value["shape"]) == 2
            assert rows or value["shape"] == [0, 0]
        return
    assert outputs["probabilities"]["shape"] == [rows, LABELS]
    assert outputs["probabilities"]["dtype"] == "float32"
    assert outputs["label"]["dtype"] == "string" and outputs["score"]["shape"] == [rows]


@pytest.mark.parametrize("case", slow_beyond(list(CASES), [c for c in CASES
                                                          if c not in TEN_MEGABYTE_CASES]))
@pytest.mark.parametrize("level", LEVELS)
def test_bad_input_gives_its_documented_outcome(outcomes, level, case):
    result = outcomes(level)[case]
    want = expected(level, case)
    assert result["outcome"] in ("ok", "error"), f"{case} at {level}: {result}"
    if isinstance(want, int):
        assert result["outcome"] == "ok", f"{result.get('error_type')}: {result.get('message')}"
        assert_output_structure(level, result["outputs"], want)
    else:
        assert result["outcome"] == "error", f"expected {want}, got outputs"
        assert result["error_type"] in want.types, result["message"]
        assert re.search(want.pattern, result["message"]), result["message"]


@pytest.mark.parametrize("case", slow_beyond(LARGE_CASES, ["1mb_string"]))
@pytest.mark.parametrize("level", LEVELS)
def test_megabyte_strings_take_bounded_time_and_memory(outcomes, level, case):
    result = outcomes(level)[case]
    assert result["outcome"] == "ok", result
    assert result["seconds"] < LARGE_CASE_SECONDS, result["seconds"]
    assert result["rss_growth_mb"] < LARGE_CASE_RSS_GROWTH_MB, result["rss_growth_mb"]


def python_texts(tensor) -> list[str]:
    """A batch of input bytes as the Python strings the HF tokenizer sees."""
    return [python_text(text) for text in tensor.numpy().tolist()]


def case_texts(case: str) -> tuple[list[str], list[str] | None]:
    spec = CASES[case]
    return python_texts(spec.text()), python_texts(spec.text_pair()) if spec.text_pair else None


@pytest.mark.parametrize(
    "case",
    ["invalid_utf8", "invalid_utf8_pair", "nul_and_controls", "empty_strings",
     "empty_strings_pair", "1mb_string"],
)
def test_layer_ids_equal_hf_on_the_replacement_decoded_text(outcomes, case):
    hf = hf_tokenizer(classifier_checkpoint())
    texts, pairs = case_texts(case)
    want = hf(texts, pairs, padding="longest", truncation=True)
    got = outcomes("layer")[case]["outputs"]
    for name, ids in want.items():
        assert got[name]["values"] == ids, name


@pytest.mark.slow
def test_ten_megabyte_strings_keep_what_truncation_keeps(outcomes):
    """The 10 MB text repeats the 1 MB one's prose, so their truncated ids agree; one 10 MB
    word is one [UNK], as any word over 100 characters."""
    results = outcomes("layer")
    ids = {case: results[case]["outputs"]["input_ids"]["values"] for case in LARGE_CASES}
    assert ids["10mb_string"][0] == ids["1mb_string"][0]
    assert ids["10mb_one_word"] == [[101, 100, 102]]


@pytest.mark.parametrize("level", ["tf2", "tf1"])
def test_exports_answer_the_valid_cases_like_the_keras_model(outcomes, level):
    served, in_memory = outcomes(level), outcomes("keras")
    for case in [case for case in ROWS if case in in_memory]:
        got, want = served[case]["outputs"], in_memory[case]["outputs"]
        np.testing.assert_allclose(
            got["probabilities"]["values"] or np.zeros((0, LABELS)),
            want["probabilities"]["values"] or np.zeros((0, LABELS)),
            atol=1e-5, err_msg=case,
        )
        assert got["label"]["values"] == want["label"]["values"], case
