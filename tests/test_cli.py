"""The tfpipe command line: export, predict, inspect, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import (
    CLASSIFIER_LABELS,
    SENTENCES,
    classifier_checkpoint,
    exported_classifier,
    seed_flow_probabilities,
    work_dir,
)

from tfpipe.cli import main

REPO = Path(__file__).resolve().parents[1]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_export_command_writes_a_verified_version(capsys):
    output = work_dir() / "cli_models" / "reviews" / "2"
    code = main(
        ["export", "--task", "text-classification", "--model", str(classifier_checkpoint()),
         "--output", str(output), "--max-length", "64"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["saved_model"] == str(output.absolute())
    assert summary["max_length"] == 64
    assert summary["labels"] == list(CLASSIFIER_LABELS.values())
    assert (output / "saved_model.pb").is_file()
    assert 'name: "reviews"' in (output.parents[1] / "models.config").read_text()


def test_predict_prints_one_json_line_per_text(capsys, tmp_path):
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(SENTENCES[2:]) + "\n\n")
    code = main(
        ["predict", str(exported_classifier().path), *SENTENCES[:2], "--file", str(texts_file)]
    )
    assert code == 0
    rows = json_lines(capsys.readouterr().out)
    assert [row["text"] for row in rows] == SENTENCES
    expected = seed_flow_probabilities(classifier_checkpoint(), SENTENCES)
    # Batched together, so padded like the seed flow's batch.
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected, atol=1e-5)
    assert [row["label"] for row in rows] == [CLASSIFIER_LABELS[i] for i in expected.argmax(-1)]


def test_inspect_reports_signatures_op_audit_and_metadata(capsys):
    assert main(["inspect", str(exported_classifier().path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["signatures"]["serving_default"]["inputs"] == {"text": "string[?]"}
    assert report["signatures"]["serving_default"]["outputs"]["probabilities"] == "float32[?,3]"
    assert set(report["signatures"]["tokenize"]["outputs"]) >= {"input_ids", "attention_mask"}
    assert report["op_audit"]["foreign_ops"] == []
    assert report["metadata"]["task"] == "text-classification"


def test_predict_without_texts_is_a_one_line_error(capsys):
    assert main(["predict", str(exported_classifier().path)]) == 1
    assert capsys.readouterr().err == "tfpipe: error: no texts: pass TEXT arguments or --file\n"


def test_export_of_a_missing_checkpoint_is_a_one_line_error(capsys, tmp_path):
    code = main(
        ["export", "--task", "text-classification", "--model", str(tmp_path / "missing"),
         "--output", str(tmp_path / "m" / "1")]
    )  # fmt: skip
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("tfpipe: error: ") and error.count("\n") == 1
    assert "is not a checkpoint folder" in error


def test_zero_shot_options_are_refused_for_other_tasks(capsys, tmp_path):
    code = main(
        ["export", "--task", "feature-extraction", "--model", str(classifier_checkpoint()),
         "--output", str(tmp_path / "m" / "1"), "--candidate-labels", "a", "b"]
    )  # fmt: skip
    assert code == 1
    assert "unknown feature-extraction options: candidate_labels" in capsys.readouterr().err


def test_python_dash_m_tfpipe_runs_the_cli():
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-m", "tfpipe", "predict", str(work_dir() / "nowhere"), "text"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert completed.returncode == 1
    last_line = completed.stderr.strip().splitlines()[-1]
    assert (
        last_line
        == f"tfpipe: error: {work_dir() / 'nowhere'} is not a SavedModel folder (no saved_model.pb)"
    )


def test_usage_errors_exit_with_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--task", "translation"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("tfpipe: error: argument --task: invalid choice")
