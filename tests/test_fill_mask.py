"""fill-mask against transformers' FillMaskPipeline on tiny seeded checkpoints: course
sentences with a mask at the start, middle or end, next to punctuation, with and without
spaces around it; texts with no mask, several masks, typed special tokens, invalid UTF-8
and more tokens than max_length; the export, the CLI and the example."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import run
from samples import FULL, slow_beyond
from task_checkpoints import FAMILIES, exported_fill_mask, hf_task_pipeline, task_checkpoint

from tfpipe.cli import main
from tfpipe.export.graph_audit import foreign_ops
from tfpipe.export.saved_model import DEFAULT_WARMUP_TEXTS
from tfpipe.fill_mask import MaskPredictions
from tfpipe.pipelines import PipelineError, pipeline

REPO = Path(__file__).resolve().parents[1]
# "Many" predictions: enough to reach far down the probabilities, where scores are close.
MANY = 50
TOP_K_VALUES = (1, 5, MANY)
DEFAULT_CASES = [("bert", 5), ("bert", 1), ("bert", MANY), ("roberta", 5)]
ALL_CASES = [(family, top_k) for family in FAMILIES for top_k in TOP_K_VALUES]
# Course sentences masked per case: an even spread over the 22 languages.
COURSE_SENTENCES = 150 if FULL else 8
# Words kept from each course sentence, so that most masks fit the 64 positions.
WORDS_KEPT = 14
OUTPUTS = ("token", "token_str", "score", "sequence", "num_masks")


@functools.cache
def fill_mask_model(family: str, top_k: int = 5):
    return pipeline("fill-mask", task_checkpoint(family, "fill-mask"), top_k=top_k)


@functools.cache
def reference_pipeline(family: str, top_k: int = 5):
    return hf_task_pipeline(task_checkpoint(family, "fill-mask"), "fill-mask", top_k=top_k)


def course_sentences(corpus: list[str], count: int) -> list[str]:
    """An even spread of ``count`` course texts of a few words, cut to WORDS_KEPT words."""
    sentences = [text for text in corpus if len(text.split()) >= 4 and text[0].isalpha()]
    step = max(1, len(sentences) // count)
    return [" ".join(text.split()[:WORDS_KEPT]) for text in sentences[::step][:count]]


def masked_variants(sentence: str, mask: str) -> list[str]:
    """The sentence with a word masked at its start, middle and end (its punctuation kept),
    and with the mask typed against its neighbours without spaces."""
    words = sentence.split()
    middle = len(words) // 2
    last = re.sub(r"\w+", mask, words[-1], count=1)
    if last == words[-1]:
        last = words[-1] + mask
    return [
        " ".join([mask, *words[1:]]),
        " ".join([*words[:middle], mask, *words[middle + 1 :]]),
        " ".join([*words[:-1], last]),
        " ".join(words[:middle]) + mask + " ".join(words[middle + 1 :]),
    ]


def edge_texts(family: str) -> list[bytes]:
    """Texts with no mask, several, typed special tokens, invalid UTF-8 around a mask and
    more tokens than max_length (a mask kept at the start, one cut off at the end)."""
    tokenizer = reference_pipeline(family).tokenizer
    mask, pad, sep = tokenizer.mask_token, tokenizer.pad_token, tokenizer.sep_token
    texts = [
        mask, f"{mask}.", f"Hello {mask}!", f"({mask})", f"  {mask}  ", f"a{mask}b",
        "", " ", "no mask here", mask.lower() + " is not the mask",
        f"two {mask} and {mask}.", f"{mask}{mask}", f"three {mask}, {mask} and {mask}",
        f"{mask} then {pad} and {sep} typed", f"{sep}{mask}{pad}",
        f"{mask} " + "word " * 100, "word " * 100 + mask,
    ]  # fmt: skip
    invalid = [
        b"caf\xe9 " + mask.encode() + b" \xff\xfe!",
        b"\xc3" + mask.encode() + b"\x80 end",
        b"\xed\xa0\x80 " + mask.encode(),
    ]
    return [text.encode() for text in texts] + invalid


def reference_answer(hf, text: str) -> list[dict] | None:
    """transformers' answer for the text's first mask, the input truncated at max_length as
    tfpipe truncates it; None when it finds no mask."""
    from transformers.pipelines.base import PipelineException

    try:
        answer = hf(text, tokenizer_kwargs={"truncation": True})
    except PipelineException as error:
        assert "No mask_token" in str(error)
        return None
    return answer[0] if isinstance(answer[0], list) else answer


def assert_matches_transformers(family: str, top_k: int, texts: list[bytes | str]) -> None:
    """The pipeline's rows on the batch equal transformers' answers text by text."""
    outputs = run(fill_mask_model(family, top_k), texts)
    hf = reference_pipeline(family, top_k)
    for row, text in enumerate(texts):
        text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        expected = reference_answer(hf, text)
        ids = hf.tokenizer(text, truncation=True)["input_ids"]
        assert outputs["num_masks"][row] == ids.count(hf.tokenizer.mask_token_id), text
        if expected is None:
            assert_no_prediction(outputs, row, top_k)
            continue
        assert outputs["token"][row].tolist() == [p["token"] for p in expected], text
        assert strings(outputs["token_str"][row]) == [p["token_str"] for p in expected], text
        assert strings(outputs["sequence"][row]) == [p["sequence"] for p in expected], text
        np.testing.assert_allclose(
            outputs["score"][row], [p["score"] for p in expected], atol=1e-5, err_msg=text
        )


def assert_no_prediction(outputs: dict, row: int, top_k: int) -> None:
    assert outputs["num_masks"][row] == 0
    assert outputs["token"][row].tolist() == [-1] * top_k
    assert strings(outputs["token_str"][row]) == [""] * top_k
    assert outputs["score"][row].tolist() == [0.0] * top_k
    assert strings(outputs["sequence"][row]) == [""] * top_k


def strings(values) -> list[str]:
    return [value.decode("utf-8") for value in values]


@pytest.mark.parametrize(("family", "top_k"), slow_beyond(ALL_CASES, DEFAULT_CASES))
def test_course_sentences_with_one_mask_match_transformers(family, top_k, corpus):
    mask = reference_pipeline(family).tokenizer.mask_token
    sentences = course_sentences(corpus, COURSE_SENTENCES)
    texts = [text for sentence in sentences for text in masked_variants(sentence, mask)]
    assert_matches_transformers(family, top_k, texts)


@pytest.mark.parametrize("family", slow_beyond(list(FAMILIES), ["bert", "roberta"]))
def test_edge_texts_match_transformers_or_get_no_prediction(family):
    """Several masks: transformers' first list; none (also cut off by truncation, or an
    empty text): token -1, "" and score 0. Long texts: transformers' truncating call."""
    assert_matches_transformers(family, 5, edge_texts(family))


def test_transformers_does_not_truncate_fill_mask_inputs():
    """Why tfpipe's answer on a long text is transformers' with truncation=True: without
    it, transformers runs past the model's 64 positions and fails."""
    text = reference_pipeline("bert").tokenizer.mask_token + " word" * 100
    with pytest.raises(Exception, match="(?i)indices|out of range|position"):
        reference_pipeline("bert")(text)
    assert run(fill_mask_model("bert"), [text])["num_masks"].tolist() == [1]


def test_an_empty_batch_gets_empty_outputs():
    outputs = fill_mask_model("bert")({"text": tf.constant([], tf.string)})
    assert {name: outputs[name].shape.as_list() for name in OUTPUTS} == {
        "token": [0, 5], "token_str": [0, 5], "score": [0, 5], "sequence": [0, 5],
        "num_masks": [0],
    }  # fmt: skip


def test_ties_keep_transformers_top_k_order():
    """Equal probabilities come out in tf.math.top_k's order (lower id first) after
    transformers' stable_softmax, which the layer reproduces."""
    from transformers.tf_utils import stable_softmax

    logits = np.zeros([2, 3, 40], np.float32)
    logits[0, 1, [3, 7, 9, 30]] = 2.0
    logits[1, 0, [1, 2, 38]] = -1.0
    ids = tf.constant([[5, 4, 6], [4, 5, 4]])
    rows = tf.constant(logits[[0, 1], [1, 0]])  # at each row's first mask
    outputs = MaskPredictions(mask_token_id=4, top_k=12)(rows, ids, tf.ones_like(ids))
    expected = tf.math.top_k(stable_softmax(rows, axis=-1), k=12)
    assert outputs["token"].numpy().tolist() == expected.indices.numpy().tolist()
    np.testing.assert_array_equal(outputs["score"].numpy(), expected.values.numpy())
    assert outputs["num_masks"].numpy().tolist() == [1, 2]


@pytest.mark.parametrize("masks", [1, 2])
def test_predicted_special_tokens_are_decoded_as_transformers(masks):
    """transformers' postprocess on logits that put special tokens (the pad token too) first:
    the sequence drops them with one mask and keeps them with several."""
    hf = reference_pipeline("bert")
    tokenizer = hf.tokenizer
    mask = tokenizer.mask_token
    text = f"paris is the {mask} of {tokenizer.pad_token} france" + f" {mask}" * (masks - 1)
    ids = tokenizer(text, return_tensors="tf")["input_ids"]
    position = ids[0].numpy().tolist().index(tokenizer.mask_token_id)
    logits = np.zeros([1, ids.shape[1], hf.model.config.vocab_size], np.float32)
    favourites = [tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.cls_token_id,
                  tokenizer.mask_token_id, tokenizer.convert_tokens_to_ids("capital")]
    logits[0, position, favourites] = [5.0, 4.0, 3.0, 2.0, 1.0]
    answer = hf.postprocess({"input_ids": ids, "logits": tf.constant(logits)}, top_k=5)
    expected = answer[0] if masks > 1 else answer
    model = fill_mask_model("bert")
    predictions = model.get_layer("mask_predictions")(
        tf.constant(logits[:, position]), ids, tf.ones_like(ids)
    )
    texts = model.get_layer("filled_texts")(
        ids, tf.ones_like(ids), predictions["token"], predictions["mask_position"],
        predictions["num_masks"],
    )  # fmt: skip
    assert predictions["token"][0].numpy().tolist() == [p["token"] for p in expected]
    assert strings(texts["token_str"][0].numpy()) == [p["token_str"] for p in expected]
    assert strings(texts["sequence"][0].numpy()) == [p["sequence"] for p in expected]


@pytest.mark.parametrize("top_k", [0, -1, True, 2.5, 30523])
def test_top_k_out_of_range_is_refused_at_build_time(top_k):
    with pytest.raises(PipelineError, match="top_k"):
        pipeline("fill-mask", task_checkpoint("bert", "fill-mask"), top_k=top_k)


def test_targets_are_not_an_option():
    with pytest.raises(PipelineError, match="unknown fill-mask options: targets"):
        pipeline("fill-mask", task_checkpoint("bert", "fill-mask"), targets=["paris"])


def test_a_tokenizer_without_mask_token_is_refused(tmp_path):
    checkpoint = tmp_path / "no-mask"
    shutil.copytree(task_checkpoint("bert", "fill-mask"), checkpoint)
    (checkpoint / "special_tokens_map.json").unlink()
    (checkpoint / "vocab.txt").unlink()
    (checkpoint / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 64,
                    "pad_token": "[PAD]"})
    )  # fmt: skip
    with pytest.raises(PipelineError, match="has no mask token"):
        pipeline("fill-mask", checkpoint)


def served_texts() -> list[bytes]:
    mask = reference_pipeline("bert").tokenizer.mask_token
    return [*edge_texts("bert"), f"Paris is the {mask} of France.".encode()]


def test_export_passes_its_self_check_with_core_ops_only():
    exported = exported_fill_mask()
    assert exported.metadata["task"] == "fill-mask"
    assert exported.op_types and not foreign_ops(exported.op_types)
    expected = run(fill_mask_model("bert"), list(DEFAULT_WARMUP_TEXTS))
    np.testing.assert_array_equal(exported.served_outputs["token"], expected["token"])


def test_served_outputs_equal_the_in_memory_model():
    texts = served_texts()
    signature = tf.saved_model.load(str(exported_fill_mask().path)).signatures["serving_default"]
    served = {name: value.numpy() for name, value in signature(text=tf.constant(texts)).items()}
    expected = run(fill_mask_model("bert"), texts)
    assert sorted(served) == sorted(OUTPUTS)
    for name in ("token", "token_str", "sequence", "num_masks"):
        np.testing.assert_array_equal(served[name], expected[name], err_msg=name)
    np.testing.assert_allclose(served["score"], expected["score"], atol=1e-6)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def assert_predict_prints_the_model_answers(capsys, saved_model: Path, top_k: int) -> None:
    mask = reference_pipeline("bert").tokenizer.mask_token
    texts = [f"Paris is the {mask} of France.", "no mask", f"{mask} and {mask}"]
    assert main(["predict", str(saved_model), *texts]) == 0
    rows = json_lines(capsys.readouterr().out)
    expected = run(fill_mask_model("bert", top_k), texts)
    assert [row["text"] for row in rows] == texts
    for index, row in enumerate(rows):
        assert row["token"] == expected["token"][index].tolist()
        assert row["token_str"] == strings(expected["token_str"][index])
        assert row["sequence"] == strings(expected["sequence"][index])
        assert row["num_masks"] == expected["num_masks"][index]
        np.testing.assert_allclose(row["score"], expected["score"][index], atol=1e-6)


def test_cli_predict_prints_the_fill_mask_answers(capsys):
    assert_predict_prints_the_model_answers(capsys, exported_fill_mask().path, 5)


@pytest.mark.slow  # an export of its own (~11 s); predict on the cached export runs by default
def test_cli_exports_and_predicts_fill_mask(capsys, tmp_path):
    output = tmp_path / "saved_models" / "fill" / "1"
    checkpoint = str(task_checkpoint("bert", "fill-mask"))
    code = main(["export", "--task", "fill-mask", "--model", checkpoint, "--output", str(output),
                 "--top-k", "3", "--serving-base-path", str(tmp_path / "saved_models")])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert_predict_prints_the_model_answers(capsys, output, 3)


@pytest.mark.slow  # a process importing TensorFlow and an export (~21 s)
def test_example_prints_transformers_answers_and_exports(tmp_path):
    checkpoint = task_checkpoint("bert", "fill-mask")
    output = tmp_path / "saved_models" / "fill_mask" / "1"
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "fill_mask.py"), "--model", str(checkpoint),
         "--output", str(output)],
        capture_output=True, text=True, env=environment, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    mask = reference_pipeline("bert").tokenizer.mask_token
    answer = reference_pipeline("bert", 3)(f"Paris is the {mask} of France.")
    for prediction in answer:
        line = f"{prediction['score']:.4f} {prediction['token_str']!r}: {prediction['sequence']!r}"
        assert line in result.stdout
    assert (output / "saved_model.pb").is_file()
