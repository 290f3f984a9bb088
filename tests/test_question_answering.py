"""The question-answering pipeline against transformers' QuestionAnsweringPipeline on the same
tiny checkpoints: every answer, offset and score of every (question, context) pair, windows
of long contexts included; its export, CLI, example and serving requests."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, hf_tokenizer
from samples import FULL, spread
from task_checkpoints import (
    FAMILIES,
    exported_question_answering,
    hf_task_pipeline,
    task_checkpoint,
)

import tfpipe
from tfpipe.build_context import PipelineError
from tfpipe.cli import main
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.serving import grpc_predict_request, rest_request_body

REPO = Path(__file__).resolve().parents[1]
TASK = "question-answering"
SCORE_TOLERANCE = 1e-5
INVALID_UTF8 = b"Caf\xe9 cr\xc3\xa8me \xff\xfe is sold in Paris \xe2\x82 since 1890."
HAND_WRITTEN = [
    ("Where do I live?", "My name is Wolfgang and I live in Berlin"),
    ("Who founded it?", "Hugging Face was founded in Paris. It builds tools for machine "
     "learning and natural language processing, and many other things that we need to "
     "explain in a text long enough to overflow into several windows of sixty-four tokens "
     "each, so here we go again with more words about the company and its libraries."),
    ("What is this?", "The [CLS] token and [SEP] tokens are special. DON'T shout!"),
    ("Which city?", "Zürich, Genève and 東京 are cities; 🤗 is an emoji. Ça va?"),
    ("x", "y"),
    ("Which?", "NUL\x00inside a word, and nul\x00INSIDE again; Tab\tand NUL\x00inside."),
    ("Why?", "   "),
    ("Who?", ""),
    ("", "An empty question."),
    ("When?", INVALID_UTF8),
]
# Options that change the graph, each value in one build; with the course texts and long
# contexts (up to 3,000 characters: tens of windows) each takes.
DEFAULT_OPTION_SETS = [
    ({}, 12, 2),
    ({"top_k": 3, "handle_impossible_answer": True, "max_seq_len": 32, "doc_stride": 8}, 8, 1),
    ({"top_k": 2, "align_to_words": False, "max_answer_len": 4}, 8, 0),
]
# Every pair of values of any two options (top_k, handle_impossible_answer, align_to_words,
# windows) in one set at least: six sets instead of all sixteen combinations.
SMALL_WINDOWS = {"max_seq_len": 24, "doc_stride": 4}
FULL_OPTION_SETS = [
    {"top_k": top_k, "handle_impossible_answer": impossible, "align_to_words": align, **windows}
    for top_k, impossible, align, windows in (
        (1, False, True, {}),
        (3, True, True, SMALL_WINDOWS),
        (3, False, False, SMALL_WINDOWS),
        (1, True, False, SMALL_WINDOWS),
        (3, True, True, {}),
        (1, False, False, {}),
    )
]


def text(value: str | bytes) -> str:
    """What transformers sees for an input: bytes as Python decodes invalid UTF-8."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def hf_answers(hf, question: str | bytes, context: str | bytes, options: dict) -> list[dict] | None:
    """transformers' answers as a list, or None when it refuses the pair (empty strings)."""
    try:
        answers = hf(question=text(question), context=text(context), **options)
    except ValueError as error:
        assert "cannot be empty" in str(error)
        return None
    return answers if isinstance(answers, list) else [answers]


def layer_answers(outputs: dict[str, np.ndarray], row: int) -> list[dict]:
    """The layer's answers of a row, checking the padding past ``num_answers``."""
    count = int(outputs["num_answers"][row])
    assert all(outputs["answer"][row, count:] == b"")
    assert not outputs["score"][row, count:].any() and not outputs["start"][row, count:].any()
    return [
        {"answer": outputs["answer"][row, k].decode("utf-8"),
         "score": float(outputs["score"][row, k]),
         "start": int(outputs["start"][row, k]), "end": int(outputs["end"][row, k])}
        for k in range(count)
    ]


def answer_mismatch(expected: list[dict] | None, got: list[dict]) -> str | None:
    """How the layer's answers differ from transformers', or None.

    transformers' zero-score answers are left out: they fill the slots past the last
    positive answer with spans picked by numpy's order among ties (docs/pipelines.md)."""
    if expected is None:
        return None if not got else f"transformers refuses the pair, the layer answers {got}"
    if any(a["score"] == 0 for a in expected[: len(got)]):
        return f"a zero-score answer of transformers ranks before a kept one: {expected}"
    positive = [a for a in expected if a["score"] > 0]
    if len(positive) != len(got):
        return f"{len(got)} answers, transformers {len(positive)}: {got} vs {positive}"
    for mine, theirs in zip(got, positive, strict=True):
        if (mine["answer"], mine["start"], mine["end"]) != (
            theirs["answer"], theirs["start"], theirs["end"]
        ):
            return f"{got} vs {positive}"
        if abs(mine["score"] - theirs["score"]) > SCORE_TOLERANCE:
            return f"scores {got} vs {positive}"
    return None


def assert_matches_transformers(family: str, options: dict, pairs: list) -> None:
    path = task_checkpoint(family, TASK)
    model = tfpipe.pipeline(TASK, path, **options)
    questions, contexts = zip(*pairs, strict=True)
    outputs = model({"question": tf.constant(questions), "context": tf.constant(contexts)})
    outputs = {name: value.numpy() for name, value in outputs.items()}
    hf = hf_task_pipeline(path, TASK)
    mismatches = []
    for row, (question, context) in enumerate(pairs):
        expected = hf_answers(hf, question, context, options)
        problem = answer_mismatch(expected, layer_answers(outputs, row))
        if problem:
            mismatches.append(f"{question!r} / {text(context)[:60]!r}: {problem}")
    assert not mismatches, f"{len(mismatches)} of {len(pairs)} pairs differ:\n" + "\n".join(
        mismatches[:10]
    )


def short_questions(family: str, corpus: list[str], count: int) -> list[str]:
    """Course lines of at most 10 tokens, leaving the context room in every window."""
    tokenizer = hf_tokenizer(task_checkpoint(family, TASK))
    lines = [line.strip() for line in corpus if 3 <= len(line.strip()) <= 60]
    return spread([line for line in lines if len(tokenizer.tokenize(line)) <= 10], count)


def course_pairs(family: str, corpus: list[str], count: int, long_count: int) -> list:
    """Course lines as contexts (the longest overflow into many windows), with short course
    lines as questions."""
    contexts = spread([line for line in corpus if len(line) > 150], count)
    contexts += spread([line for line in corpus if 1500 <= len(line) <= 3000], long_count)
    return list(zip(short_questions(family, corpus, len(contexts)), contexts, strict=True))


def default_pairs(family: str, corpus: list[str], count: int, long_count: int) -> list:
    sentences = [(SENTENCES[i], SENTENCES[(i + 3) % 4] + " " + SENTENCES[i]) for i in range(4)]
    return HAND_WRITTEN + sentences + course_pairs(family, corpus, count, long_count)


@pytest.mark.parametrize(
    "options, count, long_count", DEFAULT_OPTION_SETS, ids=lambda o: json.dumps(o) or "{}"
)
def test_bert_answers_match_transformers(corpus, options, count, long_count):
    assert_matches_transformers("bert", options, default_pairs("bert", corpus, count, long_count))


def test_roberta_answers_match_transformers(corpus):
    """Byte-level BPE: offsets and words of a byte-level tokenizer."""
    options, count, long_count = DEFAULT_OPTION_SETS[1]
    assert_matches_transformers("roberta", options, default_pairs("roberta", corpus, count, 0))


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("options", FULL_OPTION_SETS, ids=lambda o: json.dumps(o))
def test_every_family_and_option_matches_transformers(corpus, family, options):
    pairs = HAND_WRITTEN + course_pairs(family, corpus, 60 if FULL else 12, 4 if FULL else 1)
    assert_matches_transformers(family, options, pairs)


@functools.cache
def default_model():
    """The model exported_question_answering exports."""
    return tfpipe.pipeline(TASK, task_checkpoint("bert", TASK), top_k=2)


def run(model, questions: list, contexts: list) -> dict[str, np.ndarray]:
    outputs = model({"question": tf.constant(questions, tf.string),
                     "context": tf.constant(contexts, tf.string)})
    return {name: value.numpy() for name, value in outputs.items()}


def test_empty_question_or_context_has_no_answer_where_transformers_raises():
    hf = hf_task_pipeline(task_checkpoint("bert", TASK), TASK)
    for question, context in (("", "Some context."), ("A question?", "")):
        with pytest.raises(ValueError, match="cannot be empty"):
            hf(question=question, context=context)
    outputs = run(default_model(), ["", "A question?", "Where?"], ["Some context.", "", "Here."])
    assert outputs["num_answers"].tolist()[:2] == [0, 0]
    assert outputs["num_answers"][2] > 0
    assert layer_answers(outputs, 0) == layer_answers(outputs, 1) == []


def test_an_empty_batch_gives_empty_outputs():
    outputs = run(default_model(), [], [])
    assert {name: value.shape for name, value in outputs.items()} == {
        "answer": (0, 2), "score": (0, 2), "start": (0, 2), "end": (0, 2), "num_answers": (0,)
    }


def test_a_question_leaving_the_context_no_room_is_an_error_as_in_transformers():
    """tokenizers panics on it; the layer raises InvalidArgumentError for the batch."""
    with pytest.raises(tf.errors.InvalidArgumentError, match="stride"):
        run(default_model(), [" ".join(["word"] * 50)], [" ".join(["context"] * 20)])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"top_k": 0}, "top_k parameter should be >= 1"),
        ({"max_answer_len": 0}, "max_answer_len parameter should be >= 1"),
        ({"doc_stride": 100}, r"`doc_stride` \(100\) is larger than `max_seq_len` \(64\)"),
        ({"max_seq_len": 16, "doc_stride": 15}, "stride set to 15"),
        ({"max_seq_len": 100}, "embeds only 64 positions"),
    ],
)
def test_invalid_options_are_build_errors(options, message):
    """Each is refused by transformers too (on every call, or failing in the model)."""
    path = task_checkpoint("bert", TASK)
    with pytest.raises(Exception):  # noqa: B017, PT011 - transformers' own error types vary
        hf_task_pipeline(path, TASK)(question="What?", context="a b c " * 30, **options)
    with pytest.raises(PipelineError, match=message):
        tfpipe.pipeline(TASK, path, **options)


def test_export_serves_the_in_memory_answers():
    exported = exported_question_answering()
    assert exported.metadata["task"] == TASK
    assert exported.op_types and not foreign_ops(exported.op_types)
    questions, contexts = zip(*HAND_WRITTEN[:6], strict=True)
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"](
        question=tf.constant(questions), context=tf.constant(contexts)
    )
    expected = run(default_model(), list(questions), list(contexts))
    for name, value in expected.items():
        if value.dtype == object:
            np.testing.assert_array_equal(served[name].numpy(), value)
        else:
            np.testing.assert_allclose(served[name].numpy(), value, atol=1e-6)
    assert any(expected["num_answers"])



def served_outputs(inputs: dict[str, list]) -> dict[str, np.ndarray]:
    signature = tf.saved_model.load(str(exported_question_answering().path)).signatures[
        "serving_default"
    ]
    outputs = signature(**{name: tf.constant(values) for name, values in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_body_names_question_and_context(form):
    questions, contexts = ["Where do I live?", "Who?"], ["I live in Berlin.", "Ada wrote it."]
    body = rest_request_body(questions, contexts, form=form, input_names=("question", "context"))
    if form == "instances":
        assert body["instances"] == [
            {"question": q, "context": c} for q, c in zip(questions, contexts, strict=True)
        ]
        columns = {name: [row[name] for row in body["instances"]] for name in ("question",
                                                                               "context")}
    else:
        columns = body["inputs"]
    assert columns == {"question": questions, "context": contexts}
    served = served_outputs(columns)
    expected = run(default_model(), questions, contexts)
    assert served["answer"].tolist() == expected["answer"].tolist()
    np.testing.assert_allclose(served["score"], expected["score"], atol=1e-6)


def test_grpc_request_names_question_and_context():
    questions, contexts = ["Where do I live?"], ["I live in Berlin."]
    request = grpc_predict_request("qa", questions, contexts, input_names=("question", "context"))
    assert set(request.inputs) == {"question", "context"}
    inputs = {name: tf.make_ndarray(tensor).tolist() for name, tensor in request.inputs.items()}
    assert inputs == {"question": [b"Where do I live?"], "context": [b"I live in Berlin."]}
    assert served_outputs(inputs)["answer"].tolist() == run(
        default_model(), questions, contexts
    )["answer"].tolist()


def test_request_helpers_check_the_input_names():
    with pytest.raises(ValueError, match="got 1 contexts for 2 questions"):
        rest_request_body(["a", "b"], ["c"], input_names=("question", "context"))
    with pytest.raises(ValueError, match="the inputs are question and context: pass both"):
        grpc_predict_request("qa", ["a"], input_names=("question", "context"))
    assert rest_request_body(["a"], ["b"])["instances"] == [{"text": "a", "text_pair": "b"}]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow  # an export of its own (~20 s); predict runs by default below
def test_cli_exports_and_predicts_answers(capsys, tmp_path):
    output = tmp_path / "saved_models" / "qa" / "1"
    checkpoint = str(task_checkpoint("bert", TASK))
    code = main(["export", "--task", TASK, "--model", checkpoint, "--output", str(output),
                 "--top-k", "2", "--max-seq-len", "32", "--doc-stride", "8",
                 "--handle-impossible-answer", "--no-align-to-words"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["task"] == TASK
    contexts_file = tmp_path / "contexts.txt"
    contexts_file.write_bytes(b"Ada Lovelace wrote the first program.\n" + INVALID_UTF8 + b"\n")
    code = main(["predict", str(output), "My name is Wolfgang and I live in Berlin",
                 "--file", str(contexts_file), "--question", "Who?", "--question", "What?",
                 "--question", "When?", "--batch-size", "2"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = json_lines(capsys.readouterr().out)
    contexts = ["My name is Wolfgang and I live in Berlin",
                "Ada Lovelace wrote the first program.", text(INVALID_UTF8)]
    assert [(row["question"], row["context"]) for row in rows] == list(
        zip(["Who?", "What?", "When?"], contexts, strict=True)
    )
    assert list(rows[0]) == ["question", "context", "answer", "end", "num_answers", "score",
                             "start"]
    options = dict(top_k=2, max_seq_len=32, doc_stride=8, handle_impossible_answer=True,
                   align_to_words=False)
    hf = hf_task_pipeline(task_checkpoint("bert", TASK), TASK)
    for row, question in zip(rows, ["Who?", "What?", "When?"], strict=True):
        got = [{"answer": a, "score": s, "start": b, "end": e} for a, s, b, e in
               zip(row["answer"], row["score"], row["start"], row["end"], strict=True)]
        expected = hf_answers(hf, question, row["context"], options)
        assert answer_mismatch(expected, got[: row["num_answers"]]) is None


def test_cli_predict_takes_one_question_for_all_contexts_and_names_its_flags(capsys):
    path = str(exported_question_answering().path)
    assert main(["predict", path, "I live in Berlin.", "Ada wrote it.", "--question", "Who?"]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [row["question"] for row in rows] == ["Who?", "Who?"]
    assert main(["predict", path, "a", "b", "c", "--question", "x", "--question", "y"]) == 1
    assert capsys.readouterr().err == (
        "tfpipe: error: this model answers questions: give one --question per context, or one "
        "for all (texts: more than 2, --question values: 2)\n"
    )
    assert main(["predict", path, "a"]) == 1
    assert "give one --question per context" in capsys.readouterr().err
    assert main(["predict", path, "a", "--question", "x", "--text-pair", "b"]) == 1
    assert capsys.readouterr().err == (
        "tfpipe: error: this model answers questions: drop --text-pair\n"
    )


@pytest.mark.slow  # a process importing TensorFlow and an export (~35 s)
def test_example_runs_offline(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "question_answering.py"),
         "--model", str(task_checkpoint("bert", TASK)), "--output",
         str(tmp_path / "saved_models" / "qa" / "1")],
        capture_output=True, text=True, env=environment, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Where do I live?" in completed.stdout
    assert (tmp_path / "saved_models" / "qa" / "1" / "saved_model.pb").is_file()
