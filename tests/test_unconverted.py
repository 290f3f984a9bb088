"""tfpipe's layers are traced as written: AutoGraph rewrites none of their code, nor the
transformers model code they call (tfpipe/unconverted.py says why)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import tf_keras
from model_fixtures import SENTENCES, classifier_checkpoint, run
from tensorflow.python.autograph.impl import api as autograph_api

import tfpipe
from tfpipe.pipelines import pipeline

# Keras 3 (tfpipe.keras) and Beam (tfpipe.beam) stay out of tf-keras test processes.
APART = ("tfpipe.keras", "tfpipe.beam")


def tfpipe_layer_classes() -> list[type]:
    """Every tf-keras layer class tfpipe defines (all its other modules imported first)."""
    for module in pkgutil.walk_packages(tfpipe.__path__, "tfpipe."):
        if not module.name.startswith(APART) and module.name != "tfpipe.__main__":
            importlib.import_module(module.name)
    found, pending = [], [tf_keras.layers.Layer]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("tfpipe."):
                found.append(subclass)
    return found


def test_every_tfpipe_layer_call_is_exempt_from_autograph():
    classes = tfpipe_layer_classes()
    assert {"TokenizerLayer", "TransformerLayer", "LabelLookup", "RankedAnswers"} <= {
        cls.__name__ for cls in classes
    }
    assert [cls.__name__ for cls in classes if not hasattr(cls.call, "autograph_info__")] == []


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_building_and_calling_a_pipeline_converts_no_function(task, monkeypatch):
    converted = []
    convert = autograph_api._convert_actual

    def recording(entity, program_ctx):
        converted.append(getattr(entity, "__qualname__", repr(entity)))
        return convert(entity, program_ctx)

    monkeypatch.setattr(autograph_api, "_convert_actual", recording)
    model = pipeline(task, classifier_checkpoint())
    outputs = run(model, SENTENCES)
    assert outputs and converted == []
