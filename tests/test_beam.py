"""tfpipe batch-predict on Beam's DirectRunner: outputs exactly the export's, every input line
in exactly one output (predictions or errors), bad records with reasons, retried bundles
written once, and clear errors before any pipeline runs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, exported_classifier, exported_pair_classifier

from tfpipe import batch_predict as command
from tfpipe.cli import main
from tfpipe.cli_io import CommandError

pytest.importorskip("apache_beam")

from tfpipe.beam import (  # noqa: E402
    RecordError,
    RecordReader,
    SavedModelHandler,
    run_batch_predict,
)
from tfpipe.beam.handler import length_sorted_calls  # noqa: E402

TEXTS = [*SENTENCES, "", "   ", "café au lait", "A" * 700, "Short again."]
BYTES_LINES = [text.encode() for text in TEXTS] + [b"caf\xe9 \xff latin-1"]


def signature(path: Path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def direct_outputs(sig, **columns: list[bytes]) -> list[dict]:
    """The signature called directly, one dict per row, as JSON would give it back."""
    outputs = {name: value.numpy().tolist() for name, value in sig(**{
        name: tf.constant(values, tf.string) for name, values in columns.items()}).items()}
    rows = range(len(next(iter(columns.values()))))
    return [{name: decoded(outputs[name][row]) for name in outputs} for row in rows]


def decoded(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def shards(prefix: Path, errors: bool = False) -> list[dict]:
    pattern = f"{prefix.name}-errors-*" if errors else f"{prefix.name}-[0-9]*"
    files = sorted(prefix.parent.glob(pattern))
    assert files, f"no {pattern} in {prefix.parent}"
    return [json.loads(line) for path in files for line in path.read_bytes().splitlines()]


def batch_predict(capsys, *args: str) -> dict:
    """``tfpipe batch-predict ARGS`` in this process; its summary line (and nothing on
    stderr: Beam's noise is filtered out)."""
    code = main(["batch-predict", *args, "--direct_running_mode=in_memory"])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, ""), captured.err
    return json.loads(captured.out)


def test_outputs_equal_the_export_called_on_each_text_alone(capsys, tmp_path):
    (tmp_path / "in.txt").write_bytes(b"".join(line + b"\n" for line in BYTES_LINES))
    summary = batch_predict(capsys, str(exported_classifier().path), "--input",
                            str(tmp_path / "in.txt"), "--output", str(tmp_path / "out"),
                            "--batch-size", "1")  # fmt: skip
    rows = shards(tmp_path / "out")
    assert summary["records_read"] == summary["records_predicted"] == len(BYTES_LINES)
    assert summary["records_failed"] == 0
    sig = signature(exported_classifier().path)
    expected = {line.decode("utf-8", errors="replace"): direct_outputs(sig, text=[line])[0]
                for line in BYTES_LINES}  # fmt: skip
    assert sorted(row["text"] for row in rows) == sorted(expected)
    for row in rows:  # exactly: the same float32 values and strings
        assert row == {"text": row["text"], **expected[row["text"]]}


def test_pairs_are_read_from_fields_named_as_the_exports_inputs(capsys, tmp_path):
    pairs = list(zip(SENTENCES, reversed(SENTENCES), strict=True))
    records = [{"id": i, "first": a, "text_pair": b} for i, (a, b) in enumerate(pairs)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    batch_predict(capsys, str(exported_pair_classifier().path), "--input",
                  str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
                  "--text-field", "first", "--batch-size", "1")  # fmt: skip
    sig = signature(exported_pair_classifier().path)
    for row in shards(tmp_path / "out"):
        first, pair = pairs[row["id"]]
        expected = direct_outputs(sig, text=[first.encode()], text_pair=[pair.encode()])[0]
        assert row == {**records[row["id"]], **expected}


def test_calls_of_several_rows_are_length_sorted_and_mapped_back_to_their_examples():
    handler = SavedModelHandler(str(exported_classifier().path), rows_per_call=3)
    batch = [{"text": text.encode()} for text in [*TEXTS, "one more"]]
    predictions = handler.run_inference(batch, handler.load_model())
    sig = signature(exported_classifier().path)
    calls = list(length_sorted_calls(batch, 3))
    assert [len(call) for call in calls] == [3, 3, 3, 1]
    lengths = [len(batch[index]["text"]) for call in calls for index in call]
    assert lengths == sorted(lengths)
    for call in calls:
        expected = direct_outputs(sig, text=[batch[index]["text"] for index in call])
        assert [predictions[index] for index in call] == expected


BAD_RECORDS = {
    b"not json": "not JSON: Expecting value: line 1 column 1 (char 0)",
    b'{"id": 2}': "no field 'text'",
    b'{"text": 3}': "field 'text' is a number, not a string",
    b'{"text": null}': "field 'text' is null, not a string",
    b"[1, 2]": "not a JSON object but an array",
    b"": "not JSON: Expecting value: line 1 column 1 (char 0)",
    b'{"text": "caf\xe9"}': "not UTF-8: invalid continuation byte at byte 13",
    b'{"text": "\\ud800"}': "field 'text' has a lone surrogate (\\ud800-\\udfff)",
}


def test_every_line_is_predicted_or_an_error_with_its_reason(capsys, tmp_path):
    good = [json.dumps({"text": text, "n": i}).encode() for i, text in enumerate(TEXTS)]
    good.append(b'{"text": "kept", "note": "\\udfff"}')  # a lone surrogate outside the input
    lines = [line for pair in zip(good, [*BAD_RECORDS, b""] * 2, strict=False) for line in pair]
    (tmp_path / "in.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    summary = batch_predict(capsys, str(exported_classifier().path), "--input",
                            str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"))
    predicted, errors = shards(tmp_path / "out"), shards(tmp_path / "out", errors=True)
    assert summary["records_read"] == len(lines) == len(predicted) + len(errors)
    assert (summary["records_predicted"], summary["records_failed"]) == (
        len(good), len(lines) - len(good))
    assert sorted(row["n"] for row in predicted if "n" in row) == list(range(len(TEXTS)))
    assert [row["note"] for row in predicted if "note" in row] == ["\udfff"]
    bad = [line for line in lines if line not in good]
    assert sorted((e["line"], e["error"]) for e in errors) == sorted(
        (line.decode("utf-8", errors="replace"), BAD_RECORDS[line]) for line in bad)
    assert {e["file"] for e in errors} == {str(tmp_path / "in.jsonl")}


def test_a_line_over_16_mib_is_an_error_shown_cut():
    reader = RecordReader({"text": "text"}, jsonl=False)
    line = "é".encode() * (8 * 2**20) + b"!"
    with pytest.raises(RecordError, match="the line is longer than 16 MiB") as error:
        reader.read(line)
    shown = reader.error_record("in.txt", line, str(error.value))
    assert shown == {"file": "in.txt", "error": "the line is longer than 16 MiB",
                     "line": "é" * 1000}  # fmt: skip
    assert reader.read(line[:-1])[0] == {"text": "é" * (8 * 2**20)}


def test_workers_log_progress_lines_on_stderr(capsys, monkeypatch, tmp_path):
    from tfpipe.beam import pipeline

    monkeypatch.setattr(pipeline, "PROGRESS_SECONDS", 0.0)
    (tmp_path / "in.txt").write_text("".join(f"{text}\n" for text in SENTENCES))
    code = main(["batch-predict", str(exported_classifier().path), "--input",
                 str(tmp_path / "in.txt"), "--output", str(tmp_path / "out"),
                 "--direct_running_mode=in_memory"])  # fmt: skip
    assert code == 0
    counts = [re.fullmatch(r"INFO:tfpipe.beam:tfpipe batch-predict: (\d+) records predicted by "
                           r"this worker, \d+/s", line)
              for line in capsys.readouterr().err.splitlines()]  # fmt: skip
    assert counts and all(counts)
    assert sorted(int(count.group(1)) for count in counts) == list(range(1, len(SENTENCES) + 1))


def test_an_empty_file_gives_empty_outputs_and_zero_counters(capsys, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    summary = batch_predict(capsys, str(exported_classifier().path), "--input",
                            str(tmp_path / "empty.txt"), "--output", str(tmp_path / "out"))
    assert (summary["records_read"], summary["records_predicted"],
            summary["records_failed"]) == (0, 0, 0)  # fmt: skip
    assert shards(tmp_path / "out") == shards(tmp_path / "out", errors=True) == []


class FailingOnceHandler(SavedModelHandler):
    """Raises in its second model call of the first attempt, as a worker lost mid-run: the
    first call's predictions have already gone downstream to the sink."""

    def __init__(self, saved_model: str, marker: str) -> None:
        super().__init__(saved_model, rows_per_call=2)
        self.marker, self.calls = marker, 0

    def run_inference(self, batch, model, inference_args=None):
        self.calls += 1
        if self.calls == 2 and not Path(self.marker).exists():
            Path(self.marker).touch()
            raise RuntimeError("worker lost")
        return super().run_inference(batch, model, inference_args)


def test_a_bundle_retried_after_a_failure_writes_each_record_once(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    lines = [f"{i}: {SENTENCES[i % len(SENTENCES)]}" for i in range(40)]
    (tmp_path / "in.txt").write_text("".join(f"{line}\n" for line in lines))
    marker = tmp_path / "failed-once"
    handler = FailingOnceHandler(str(exported_classifier().path), str(marker))
    summary = run_batch_predict(
        PipelineOptions(["--runner=BundleBasedDirectRunner"]), str(tmp_path / "in.txt"),
        str(tmp_path / "out"), RecordReader({"text": "text"}, jsonl=False), handler)
    assert marker.exists()  # the failure happened, and the run went on
    assert sorted(row["text"] for row in shards(tmp_path / "out")) == sorted(lines)
    assert summary.records_predicted == len(lines)


def test_mistakes_are_one_line_errors_before_any_pipeline_runs(capsys, tmp_path):
    export, pair = str(exported_classifier().path), str(exported_pair_classifier().path)
    (tmp_path / "in.txt").write_text("text\n")
    (tmp_path / "in.csv").write_text("text\n")
    cases = {
        (str(tmp_path / "missing"), "in.txt"):
            f"{tmp_path / 'missing'} is not a SavedModel folder (no saved_model.pb)",
        (export, "none-*.txt"): f"no input files match --input {tmp_path / 'none-*.txt'}",
        (export, "in.csv"): f"cannot tell the format of --input {tmp_path / 'in.csv'} from "
                            "its extension: pass --format jsonl or --format text",
        (pair, "in.txt"): "this export takes text, text_pair: give JSONL records with those "
                          "fields (--format jsonl)",
    }  # fmt: skip
    for (saved_model, name), message in cases.items():
        code = main(["batch-predict", saved_model, "--input", str(tmp_path / name),
                     "--output", str(tmp_path / "out")])  # fmt: skip
        assert (code, capsys.readouterr().err) == (1, f"tfpipe: error: {message}\n")
    assert not list(tmp_path.glob("out*"))


def failing_export(folder: Path) -> Path:
    """A SavedModel taking ``text`` whose every call fails, as a broken model would."""

    class Failing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            check = tf.debugging.assert_equal(tf.size(text), -1, message="model is broken")
            with tf.control_dependencies([check]):
                return {"label": tf.identity(text)}

    module = Failing()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def test_a_failing_model_ends_the_run_with_a_one_line_reason(capsys, tmp_path):
    (tmp_path / "in.txt").write_text("text\n")
    code = main(["batch-predict", str(failing_export(tmp_path / "broken")), "--input",
                 str(tmp_path / "in.txt"), "--output", str(tmp_path / "out"),
                 "--direct_running_mode=in_memory"])  # fmt: skip
    last = capsys.readouterr().err.splitlines()[-1]
    assert code == 1
    assert last.startswith("tfpipe: error: the pipeline failed: ") and "model is broken" in last
    assert not list(tmp_path.glob("out-*"))


def test_options_neither_ours_nor_beams_are_refused(capsys, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"body": "text"}\n')
    code = main(["batch-predict", str(exported_classifier().path), "--input",
                 str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
                 "--text_field=body", "--direct_num_workers=1"])  # fmt: skip
    assert (code, capsys.readouterr().err) == (
        1, "tfpipe: error: unknown options --text_field: neither batch-predict's nor Beam's\n")


def test_text_field_needs_an_export_with_a_text_input():
    with pytest.raises(CommandError, match="this export has no text input"):
        command.input_fields(["context", "question"], "body", jsonl=True)
    assert command.input_fields(["context", "question"], None, jsonl=True) == {
        "context": "context", "question": "question"}


def test_the_direct_runner_gets_a_worker_per_core_unless_told(monkeypatch):
    from apache_beam.options.pipeline_options import DirectOptions

    monkeypatch.setattr(command.os, "cpu_count", lambda: 3)
    options = command.pipeline_options("DirectRunner", []).view_as(DirectOptions)
    assert (options.direct_num_workers, options.direct_running_mode) == (3, "multi_threading")
    given = ["--direct_num_workers=1", "--direct_running_mode=multi_processing"]
    options = command.pipeline_options("DirectRunner", given).view_as(DirectOptions)
    assert (options.direct_num_workers, options.direct_running_mode) == (1, "multi_processing")
    options = command.pipeline_options("direct", ["--direct_running_mode=in_memory"])
    assert options.view_as(DirectOptions).direct_num_workers == 1  # what in_memory runs


def test_without_beam_the_command_says_how_to_install_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam fails
    for name in [name for name in sys.modules if name.startswith("tfpipe.beam")]:
        monkeypatch.delitem(sys.modules, name)
    code = main(["batch-predict", "model", "--input", "x.txt", "--output", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == (
        "tfpipe: error: tfpipe batch-predict needs Apache Beam: pip install 'tfpipe[beam]'\n"
    )


def test_other_commands_still_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "model", "text", "--direct_num_workers=2"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err
