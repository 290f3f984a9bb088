"""token-classification: every entity of transformers' TokenClassificationPipeline (4.54.1),
computed in the graph, on tiny seeded checkpoints of each tokenizer family.

The reference is transformers' own TF pipeline on the same checkpoint (task_checkpoints.py):
entity (or entity_group), word, start and end must be equal and scores within 1e-5, for
every text, in transformers' order. Checkpoints hold 64 positions, so course texts overflow:
cut at 64 tokens without ``stride``, read in windows with it.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from disk_cache import REPO
from model_fixtures import SENTENCES
from samples import FULL, slow_beyond
from task_checkpoints import (
    FAMILIES,
    exported_token_classification,
    hf_task_pipeline,
    task_checkpoint,
)

from tfpipe.build_context import PipelineError
from tfpipe.cli import main
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.pipelines import pipeline
from tfpipe.token_entities import TokenEntities

STRATEGIES = ("none", "simple", "first", "average", "max")
STRIDE = 16
# Words in bert's vocabulary as subwords, unknown characters ([UNK] in MiniLM's vocabulary),
# clean-up pairs of the WordPiece decoder, accents, controls, a text far past 64 tokens.
EDGE_TEXTS = [
    *SENTENCES,
    "",
    "My name is Wolfgang and I live in Berlin; Sylvain works at Hugging Face in Brooklyn.",
    "Emoji 😀 and snowman ☃ stand alone, 😀😀 twice; ﬁne ligatures, ñandú, Ωmega.",
    "I don't know , do not ask ! it 's what we 've seen ?",
    "#hashtag ##double ### and @mentions, e-mail a.b@c.de, 3.14159 and 1,000,000.",
    "  leading and   inner spaces\tand\ttabs\nand\nnewlines  ",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    " ".join(["Paris is a city in France, and Berlin is one in Germany."] * 12),
]
# Invalid UTF-8 reaches the model as bytes; transformers gets the text Python decodes.
INVALID_UTF8 = b"caf\xc3 bad \xff\xfe bytes \xe2\x82 end \xed\xa0\x80 surrogate"


def corpus_texts(corpus: list[str], size: int, longest_chars: int | None) -> list[str]:
    """An even spread of ``size`` course texts (of some 24,000: transformers' pipeline takes
    tens of milliseconds a window), and the longest one of at most ``longest_chars``
    characters (10,556, some 55 windows, in the full run)."""
    spread = corpus[:: max(1, len(corpus) // size)][:size]
    longest = max(
        (text for text in corpus if longest_chars is None or len(text) <= longest_chars), key=len
    )
    return spread if longest in spread else [*spread, longest]


@functools.cache
def token_classification_pipeline(
    family: str, strategy: str, stride: int | None, ignore_labels: tuple | None
):
    options = {} if ignore_labels is None else {"ignore_labels": list(ignore_labels)}
    return pipeline("token-classification", task_checkpoint(family, "token-classification"),
                    aggregation_strategy=strategy, stride=stride, **options)


@functools.cache
def reference(family: str, strategy: str, stride: int | None, ignore_labels: tuple | None):
    options = {"aggregation_strategy": strategy}
    if stride is not None:
        options["stride"] = stride
    if ignore_labels is not None:
        options["ignore_labels"] = list(ignore_labels)
    return hf_task_pipeline(task_checkpoint(family, "token-classification"), "token-classification",
                            **options)


def entity_rows(outputs: dict, row: int) -> list[tuple]:
    return [
        (outputs["entity"][row, i].decode(), outputs["word"][row, i].decode(),
         int(outputs["start"][row, i]), int(outputs["end"][row, i]),
         float(outputs["score"][row, i]))
        for i in range(outputs["num_entities"][row])
    ]  # fmt: skip


def hf_rows(entities: list[dict]) -> list[tuple]:
    return [
        (entity.get("entity", entity.get("entity_group")), entity["word"], int(entity["start"]),
         int(entity["end"]), float(entity["score"]))
        for entity in entities
    ]  # fmt: skip


def mismatches(got: list[tuple], expected: list[tuple]) -> bool:
    return len(got) != len(expected) or any(
        g[:4] != e[:4] or abs(g[4] - e[4]) > 1e-5 for g, e in zip(got, expected, strict=True)
    )


def assert_matches_transformers(
    family: str,
    texts: list[str | bytes],
    strategy: str = "none",
    stride: int | None = None,
    ignore_labels: tuple | None = None,
) -> None:
    """The pipeline's entities for ``texts`` are transformers' for each of them."""
    model = token_classification_pipeline(family, strategy, stride, ignore_labels)
    outputs = {k: v.numpy() for k, v in model({"text": tf.constant(texts)}).items()}
    hf = reference(family, strategy, stride, ignore_labels)
    wrong = []
    for row, text in enumerate(texts):
        decoded = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        got, expected = entity_rows(outputs, row), hf_rows(hf(decoded))
        if mismatches(got, expected):
            wrong.append((decoded[:60], got, expected))
    assert not wrong, f"{len(wrong)} of {len(texts)} texts differ; first: {wrong[0]}"
    assert outputs["entity"].shape == outputs["word"].shape == outputs["start"].shape
    assert outputs["entity"].shape[1] == max(outputs["num_entities"], default=0)


CASES = [(family, strategy, stride) for family in FAMILIES for strategy in STRATEGIES
         for stride in (None, STRIDE) if not (strategy == "none" and stride)]  # fmt: skip
DEFAULT_CASES = [
    ("bert", "none", None), ("bert", "simple", STRIDE), ("bert", "average", None),
    ("bert", "max", None), ("roberta", "first", STRIDE),
]  # fmt: skip


@pytest.mark.parametrize(("family", "strategy", "stride"), slow_beyond(CASES, DEFAULT_CASES))
def test_entities_match_transformers(family, strategy, stride, corpus):
    course = corpus_texts(corpus, 300, None) if FULL else corpus_texts(corpus, 12, 2000)
    texts = [*EDGE_TEXTS, INVALID_UTF8, *course]
    assert_matches_transformers(family, texts, strategy, stride)


@pytest.mark.parametrize(
    ("strategy", "ignore_labels"),
    slow_beyond([("none", ("O", "B-PER")), ("simple", ()), ("first", ("PER",))], [("simple", ())]),
)
def test_ignore_labels_drop_what_transformers_drops(strategy, ignore_labels):
    assert_matches_transformers("bert", EDGE_TEXTS, strategy, None, ignore_labels)


def test_empty_texts_and_an_empty_batch_have_no_entities():
    model = token_classification_pipeline("bert", "simple", STRIDE, None)
    outputs = model({"text": tf.constant(["", ""])})
    assert outputs["num_entities"].numpy().tolist() == [0, 0]
    assert outputs["entity"].shape == (2, 0)
    empty = model({"text": tf.constant([], tf.string)})
    assert {name: tuple(value.shape) for name, value in empty.items()} == {
        "entity": (0, 0), "score": (0, 0), "word": (0, 0), "start": (0, 0), "end": (0, 0),
        "num_entities": (0,),
    }  # fmt: skip


def test_entities_layer_rebuilds_from_its_config():
    model = token_classification_pipeline("bert", "average", STRIDE, None)
    layer = model.get_layer("entities")
    texts = tf.constant([*SENTENCES, EDGE_TEXTS[-1]])
    encoded = model.get_layer("tokenizer")(texts)
    inputs = {**encoded, "text": texts, "logits": model.get_layer("transformer")(encoded)}
    rebuilt = TokenEntities.from_config(layer.get_config())
    for name, value in layer(inputs).items():
        np.testing.assert_array_equal(rebuilt(inputs)[name].numpy(), value.numpy())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stride": 8}, "stride reads a long text"),
        ({"aggregation_strategy": "simple", "stride": 64}, "stride"),
        ({"aggregation_strategy": "first", "stride": 63}, "stride=63"),
        ({"aggregation_strategy": "simple", "stride": -1}, "non-negative"),
        ({"aggregation_strategy": "longest"}, "aggregation_strategy must be one of"),
        ({"ignore_labels": "O"}, "ignore_labels must be a list"),
    ],
)
def test_options_transformers_refuses_are_build_errors(options, message):
    with pytest.raises(PipelineError, match=message):
        pipeline("ner", task_checkpoint("bert", "token-classification"), **options)


def test_export_serves_what_the_in_memory_model_answers():
    exported = exported_token_classification("bert")
    assert exported.metadata["task"] == "token-classification"
    assert not foreign_ops(set(exported.op_types))
    texts = tf.constant([*EDGE_TEXTS, INVALID_UTF8])
    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"](text=texts)
    expected = token_classification_pipeline("bert", "simple", STRIDE, None)({"text": texts})
    assert set(served) == set(expected)
    for name, value in expected.items():
        if value.dtype == tf.float32:
            np.testing.assert_allclose(served[name].numpy(), value.numpy(), atol=1e-5)
        else:
            np.testing.assert_array_equal(served[name].numpy(), value.numpy())


def assert_predict_prints_transformers_entities(capsys, saved_model, **options) -> None:
    texts = [SENTENCES[0], ""]
    assert main(["predict", str(saved_model), *texts]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    checkpoint = task_checkpoint("bert", "token-classification")
    hf = hf_task_pipeline(checkpoint, "token-classification", **options)
    for line, text in zip(lines, texts, strict=True):
        count = line["num_entities"]
        got = list(zip(*(line[name][:count] for name in
                         ("entity", "word", "start", "end", "score")), strict=True))
        assert not mismatches(got, hf_rows(hf(text)))
    assert len(lines) == 2 and lines[1]["num_entities"] == 0


def test_cli_predict_prints_transformers_entities(capsys):
    assert_predict_prints_transformers_entities(
        capsys, exported_token_classification("bert").path, aggregation_strategy="simple",
        stride=STRIDE,
    )


@pytest.mark.slow  # an export of its own (~11 s); predict on the cached export runs by default
def test_cli_exports_and_predicts_entities(capsys, tmp_path):
    checkpoint = task_checkpoint("bert", "token-classification")
    output = tmp_path / "saved_models" / "ner" / "1"
    assert main(["export", "--task", "ner", "--model", str(checkpoint), "--output", str(output),
                 "--aggregation-strategy", "first", "--stride", "16", "--ignore-labels"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "token-classification"
    assert_predict_prints_transformers_entities(
        capsys, output, aggregation_strategy="first", stride=16, ignore_labels=[]
    )


@pytest.mark.slow  # a build and an export in a subprocess: the CLI test covers both
def test_example_runs_offline(tmp_path):
    checkpoint = task_checkpoint("bert", "token-classification")
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "token_classification.py"), "--model",
         str(checkpoint), "--output", str(tmp_path / "saved_models" / "ner" / "1")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["text"] for line in printed] == [
        "My name is Wolfgang and I live in Berlin.", "Sylvain works at Hugging Face in Brooklyn."
    ]
    assert (tmp_path / "saved_models" / "ner" / "1" / "saved_model.pb").is_file()
