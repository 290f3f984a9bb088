"""The tfpipe command line: export, predict (streamed, one line per input line), inspect,
and quiet one-line errors that name CLI flags."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import (
    CLASSIFIER_LABELS,
    SENTENCES,
    TOKENIZER_FILES,
    classifier_checkpoint,
    exported_classifier,
    exported_pair_classifier,
    seed_flow_probabilities,
    work_dir,
)

from tfpipe import _command_start, cli, cli_io
from tfpipe.cli import main

REPO = Path(__file__).resolve().parents[1]


def json_lines(text: str) -> list[dict]:
    """Each output line (split on newlines only, and each ending with one) as JSON."""
    assert text.endswith("\n") or not text
    return [json.loads(line) for line in text.split("\n")[:-1]]


def numbered_lines(count: int) -> list[str]:
    """Distinct texts (so order is checkable) with the lines a dropping reader would lose:
    empty, whitespace-only, and a carriage return inside a line."""
    specials = {3: "", 4: "   ", 5: "\t", 6: "a carriage\rreturn inside the line"}
    return [specials.get(i % 50, f"{i}: {SENTENCES[i % len(SENTENCES)]}") for i in range(count)]


def cli_environment() -> dict[str, str]:
    """The caller's environment as a user's shell has it: no test-only TensorFlow logging
    level, so the CLI's own quieting is what is tested."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                                     "TFPIPE_DEBUG")}
    return {**environment, "PYTHONPATH": str(REPO)}


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
    texts_file.write_text("\n".join(SENTENCES[2:]) + "\n")
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
    assert [list(row) for row in rows] == [["text", "label", "probabilities", "score"]] * 4


def test_predict_writes_one_line_per_input_line_in_order(capsys, tmp_path):
    lines = numbered_lines(300)
    texts_file = tmp_path / "texts.txt"
    texts_file.write_bytes("".join(f"{line}\r\n" if i % 2 else f"{line}\n"
                                   for i, line in enumerate(lines)).encode())
    code = main(["predict", str(exported_classifier().path), "", "--file", str(texts_file),
                 "--batch-size", "16"])  # fmt: skip
    assert code == 0
    rows = json_lines(capsys.readouterr().out)
    assert [row["text"] for row in rows] == ["", *lines]
    empty_results = [row["probabilities"] for row in rows if row["text"] == ""]
    assert len(empty_results) == 1 + lines.count("")
    np.testing.assert_allclose(empty_results, [empty_results[0]] * len(empty_results), atol=1e-5)


class LineCounter(io.BytesIO):
    """stdin whose lines read so far are counted."""

    lines_read = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.lines_read += bool(line)
        return line


class WriteRecorder(io.BytesIO):
    """stdout recording how many stdin lines had been read at each write and each flush."""

    def __init__(self, stdin: LineCounter) -> None:
        super().__init__()
        self.stdin = stdin
        self.events: list[tuple[str, int]] = []

    def write(self, data) -> int:
        self.events.append(("write", self.stdin.lines_read))
        return super().write(data)

    def flush(self) -> None:
        self.events.append(("flush", self.stdin.lines_read))


def test_predict_writes_each_batch_before_reading_the_next(monkeypatch):
    stdin = LineCounter("".join(f"{line}\n" for line in numbered_lines(40)).encode())
    stdout = WriteRecorder(stdin)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stdin))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    code = main(["predict", str(exported_classifier().path), "--file", "-",
                 "--batch-size", "16"])  # fmt: skip
    assert code == 0
    assert stdout.events[:6] == [("write", 16), ("flush", 16), ("write", 32), ("flush", 32),
                                 ("write", 40), ("flush", 40)]  # fmt: skip
    assert {kind for kind, _ in stdout.events[6:]} <= {"flush"}
    assert len(stdout.getvalue().splitlines()) == 40


def test_predict_feeds_invalid_utf8_bytes_to_the_model(capsys, tmp_path):
    texts_file = tmp_path / "latin1.txt"
    texts_file.write_bytes(b"caf\xe9 au lait \xff\n")
    replaced = "caf\ufffd au lait \ufffd"
    code = main(["predict", str(exported_classifier().path), replaced, "--file", str(texts_file)])
    assert code == 0
    from_text, from_file = json_lines(capsys.readouterr().out)
    assert from_file["text"] == from_text["text"] == replaced
    assert from_file["label"] == from_text["label"]
    np.testing.assert_allclose(from_file["probabilities"], from_text["probabilities"], atol=1e-6)


def test_predict_file_errors_name_the_file(capsys, tmp_path):
    export = str(exported_classifier().path)
    assert main(["predict", export, "--file", str(tmp_path / "missing.txt")]) == 1
    assert capsys.readouterr().err == (
        f"tfpipe: error: cannot read --file {tmp_path / 'missing.txt'}: No such file or directory\n"
    )
    assert main(["predict", export, "--file", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error == f"tfpipe: error: cannot read --file {tmp_path}: Is a directory\n"


def test_predict_refuses_an_overlong_line_naming_file_and_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_io, "MAX_LINE_BYTES", 2**20)
    texts_file = tmp_path / "texts.txt"
    texts_file.write_bytes(b"short\n" + b"x" * (2**20 + 1) + b"\r\n")
    assert main(["predict", str(exported_classifier().path), "--file", str(texts_file)]) == 1
    assert capsys.readouterr().err == (
        f"tfpipe: error: {texts_file} line 2 is longer than 1 MiB; split it into shorter lines\n"
    )


def test_predict_pairs_one_text_pair_per_text(capsys):
    texts, pairs = SENTENCES[:3], SENTENCES[1:4]
    code = main(["predict", str(exported_pair_classifier().path), *texts, "--text-pair", *pairs,
                 "--batch-size", "2"])  # fmt: skip
    assert code == 0
    rows = json_lines(capsys.readouterr().out)
    assert [row["text"] for row in rows] == texts
    expected = seed_flow_probabilities(classifier_checkpoint(), texts, pairs)
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected, atol=1e-5)
    code = main(["predict", str(exported_pair_classifier().path), *texts, "--text-pair", "one"])
    assert code == 1
    assert capsys.readouterr().err == (
        "tfpipe: error: this model classifies pairs: give one --text-pair per text"
        " (texts: more than 1, --text-pair values: 1)\n"
    )


def test_predict_stops_quietly_when_stdout_is_closed(monkeypatch, capsys, tmp_path):
    class ClosedPipe(io.BytesIO):
        def write(self, data) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    stand_in = (tmp_path / "stdout").open("wb")  # main points the closed stdout's fd at null
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(ClosedPipe()))
    monkeypatch.setattr(sys.stdout, "fileno", stand_in.fileno)
    assert main(["predict", str(exported_classifier().path), "text"]) == 1
    assert capsys.readouterr().err == ""
    stand_in.close()


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
    assert "unknown feature-extraction options: --candidate-labels\n" in capsys.readouterr().err


def test_export_into_an_existing_version_names_the_overwrite_flag(capsys):
    existing = exported_classifier().path
    code = main(["export", "--task", "text-classification", "--model",
                 str(classifier_checkpoint()), "--output", str(existing)])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err == (
        f"tfpipe: error: {existing} exists; pass --overwrite to replace it\n"
    )


def test_pickled_weights_error_names_the_allow_pickle_flag(capsys, tmp_path):
    checkpoint = tmp_path / "pickled"
    checkpoint.mkdir()
    for name in ("config.json", *TOKENIZER_FILES):
        shutil.copy(classifier_checkpoint() / name, checkpoint / name)
    (checkpoint / "pytorch_model.bin").write_bytes(b"never unpickled")
    code = main(["export", "--task", "text-classification", "--model", str(checkpoint),
                 "--output", str(tmp_path / "m" / "1")])  # fmt: skip
    assert code == 1
    error = capsys.readouterr().err
    assert "so pass --allow-pickle if you trust this checkpoint" in error
    assert "allow_pickle" not in error


def test_flag_names_replace_python_names_but_not_quoted_names_or_paths():
    flags = {"text_pair": "--text-pair", "overwrite": "--overwrite", "top_k": "--top-k"}
    message = ("top_k must be at most 3; text_pair, 'text_pair', /data/text_pair/1 and "
               "text_pair.txt; pass overwrite=True, not overwrite")  # fmt: skip
    assert cli.with_cli_flags(message, flags) == (
        "--top-k must be at most 3; --text-pair, 'text_pair', /data/text_pair/1 and "
        "text_pair.txt; pass --overwrite, not overwrite"
    )


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"tfpipe {metadata.version('tfpipe')}\n"


def test_python_dash_m_tfpipe_errors_are_exactly_one_stderr_line():
    completed = subprocess.run(
        [sys.executable, "-m", "tfpipe", "predict", str(work_dir() / "nowhere"), "text"],
        capture_output=True, text=True, env=cli_environment(), check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr == (
        f"tfpipe: error: {work_dir() / 'nowhere'} is not a SavedModel folder (no saved_model.pb)\n"
    )


def test_tfpipe_script_streams_stdin_with_nothing_on_stderr():
    lines = numbered_lines(300)
    script = Path(sys.executable).with_name("tfpipe")  # the console script pip installed
    completed = subprocess.run(
        [str(script), "predict", str(exported_classifier().path), "x",
         "--file", "-", "--batch-size", "16"],
        input="".join(f"{line}\n" for line in lines), capture_output=True, text=True,
        env=cli_environment(), check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert [row["text"] for row in json_lines(completed.stdout)] == ["x", *lines]


def predict_process(texts_file: Path, output: Path) -> tuple[int, float]:
    """(exit code, peak RSS in MiB) of ``python -m tfpipe predict EXPORT --file texts_file``,
    its stdout in ``output``: wait4 reports the child's own peak."""
    with output.open("wb") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-m", "tfpipe", "predict", str(exported_classifier().path),
             "--file", str(texts_file)],
            stdout=stdout, env=cli_environment(),
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss / 1024  # KiB on Linux


@pytest.mark.slow
def test_predict_streams_100k_lines_in_bounded_memory(tmp_path):
    peaks = {}
    for count in (1_000, 100_000):
        texts_file = tmp_path / f"{count}.txt"
        texts_file.write_text("".join(f"{line}\n" for line in numbered_lines(count)))
        code, peaks[count] = predict_process(texts_file, tmp_path / f"{count}.jsonl")
        assert code == 0
        with (tmp_path / f"{count}.jsonl").open("rb") as output:
            assert sum(1 for _ in output) == count
    # One batch of 100,000 texts would need gigabytes; streamed, the peak is a batch's.
    assert peaks[100_000] - peaks[1_000] < 100, peaks


@pytest.mark.parametrize(
    ("argv", "orig_argv", "is_the_command"),
    [
        (["/venv/bin/tfpipe", "predict"], ["/venv/bin/python", "/venv/bin/tfpipe", "predict"],
         True),
        (["-m"], ["python", "-X", "utf8", "-m", "tfpipe", "predict"], True),
        (["-m"], ["python", "-mtfpipe"], True),
        (["-m"], ["python", "-m", "pytest", "tests"], False),
        (["serve.py"], ["python", "serve.py"], False),
    ],
)  # fmt: skip
def test_only_the_command_imports_tensorflow_quietly(monkeypatch, argv, orig_argv,
                                                     is_the_command):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert _command_start.running_the_command() is is_the_command


def test_usage_errors_exit_with_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--task", "translation"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("tfpipe: error: argument --task: invalid choice")


def test_batch_size_must_be_a_positive_integer(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "model", "text", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(
        "tfpipe: error: argument --batch-size: '0' is not a positive integer"
    )
