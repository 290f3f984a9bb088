"""Fine-tuning a `tfpipe.keras` classifier from raw strings (examples/keras3_fine_tune.py):
the loss falls, and the trained model's export, `.keras` file and in-memory model agree.
Also the CLI's `--keras 3` export. Slow tests: training and exports take minutes on 2 cores."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras3_checkpoints import minilm_classifier  # noqa: E402
from model_fixtures import minilm_path  # noqa: E402

from tfpipe.cli import main as cli_main  # noqa: E402
from tfpipe.keras import export  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["I really enjoyed it!", "This was dreadful.", ""]


def load_example():
    spec = importlib.util.spec_from_file_location(
        "keras3_fine_tune", REPO / "examples" / "keras3_fine_tune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fine_tuning_from_strings_lowers_the_loss_and_exports_the_trained_model(tmp_path):
    classifier, losses = load_example().fine_tune(str(minilm_path()), epochs=3)
    assert losses[-1] < losses[0] - 0.02, losses
    in_memory = classifier({"text": tf.constant(TEXTS)})
    exported = export(classifier, tmp_path / "saved_models" / "fine_tuned" / "1",
                      warmup_texts=TEXTS)
    np.testing.assert_allclose(exported.served_outputs["probabilities"],
                               in_memory["probabilities"], atol=1e-5)
    assert exported.served_outputs["label"] == [x.decode() for x in in_memory["label"].numpy()]
    classifier.save(tmp_path / "fine_tuned.keras")
    reloaded = keras.saving.load_model(tmp_path / "fine_tuned.keras")
    np.testing.assert_allclose(reloaded({"text": tf.constant(TEXTS)})["probabilities"],
                               in_memory["probabilities"], atol=1e-6)


@pytest.mark.slow
def test_cli_exports_a_keras3_pipeline(tmp_path, capsys):
    output = tmp_path / "saved_models" / "classifier" / "1"
    assert cli_main(["export", "--keras", "3", "--task", "text-classification",
                     "--model", str(minilm_classifier()), "--output", str(output)]) == 0
    metadata = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metadata["keras_version"] == keras.__version__
    assert metadata["labels"] == ["negative", "neutral", "positive"]


def test_cli_refuses_options_keras3_pipelines_do_not_take(tmp_path, capsys):
    code = cli_main(["export", "--keras", "3", "--task", "text-classification",
                     "--model", str(minilm_classifier()), "--output", str(tmp_path / "m" / "1"),
                     "--top-k", "2"])
    assert code != 0
    assert "--keras 3 does not take --top-k" in capsys.readouterr().err
