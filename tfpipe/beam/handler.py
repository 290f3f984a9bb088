"""A RunInference ModelHandler for tfpipe exports.

Beam's own TensorFlow handler loads through Keras, which fails on plain SavedModels in the
Keras 3 era (apache/beam issue 30616); a tfpipe export needs no Keras: ``tf.saved_model.load``
and its ``serving_default`` signature are what TF Serving runs, so the numbers are the same.

Examples are ``{input name: UTF-8 bytes}`` (``text``; ``text`` and ``text_pair``; or
``question`` and ``context``), wrapped in Beam's KeyedModelHandler for keyed examples.
Predictions are ``{output name: JSON-able value}``. RunInference shares the loaded export
across a worker's threads (``shared.Shared``), or with ``large_model=True`` across its
processes (``multi_process_shared``: calls go through ``LoadedExport.predict``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf
from apache_beam.ml.inference.base import ModelHandler

from tfpipe.cli_io import json_value

Example = dict[str, bytes]
Prediction = dict[str, Any]
DEFAULT_ROWS_PER_CALL = 32
# Beam's batch is this many model calls at most: sorting a larger batch by length lets each
# call pad to a length close to its own texts'.
CALLS_PER_BATCH = 8


class LoadedExport:
    """An export's signature, loaded without Keras. The loaded object is kept: the
    signature's variables live as long as it does."""

    def __init__(self, saved_model: str, signature_name: str) -> None:
        self.saved_model = tf.saved_model.load(saved_model)
        self.signature = self.saved_model.signatures[signature_name]

    def predict(self, inputs: dict[str, list[bytes]]) -> dict[str, Any]:
        """The signature on string columns; its outputs as numpy arrays."""
        tensors = {name: tf.constant(values, tf.string) for name, values in inputs.items()}
        return {name: value.numpy() for name, value in self.signature(**tensors).items()}


class SavedModelHandler(ModelHandler[Example, Prediction, LoadedExport]):
    """Runs a tfpipe export on Beam's batches, ``rows_per_call`` rows per signature call.

    Beam batches up to ``CALLS_PER_BATCH * rows_per_call`` examples; each batch is sorted by
    text length and cut into calls, so a call pads to its own longest text (the export's
    length-sorted chunking then works within a call).
    """

    def __init__(
        self,
        saved_model: str,
        *,
        rows_per_call: int = DEFAULT_ROWS_PER_CALL,
        signature_name: str = "serving_default",
        large_model: bool = False,
    ) -> None:
        super().__init__(
            min_batch_size=rows_per_call,
            max_batch_size=CALLS_PER_BATCH * rows_per_call,
            large_model=large_model,
        )
        self.saved_model = saved_model
        self.rows_per_call = rows_per_call
        self.signature_name = signature_name

    def load_model(self) -> LoadedExport:
        return LoadedExport(self.saved_model, self.signature_name)

    def run_inference(
        self,
        batch: Sequence[Example],
        model: LoadedExport,
        inference_args: dict[str, Any] | None = None,
    ) -> list[Prediction]:
        predictions: list[Prediction] = [{} for _ in batch]
        for call in length_sorted_calls(batch, self.rows_per_call):
            rows = [batch[index] for index in call]
            outputs = model.predict({name: [row[name] for row in rows] for name in rows[0]})
            for row, index in enumerate(call):
                predictions[index] = {
                    name: json_value(outputs[name][row]) for name in sorted(outputs)
                }
        return predictions

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        if inference_args:
            raise ValueError("a tfpipe export takes no inference_args")

    def get_num_bytes(self, batch: Sequence[Example]) -> int:
        return sum(text_bytes(example) for example in batch)

    def get_metrics_namespace(self) -> str:
        return "tfpipe"


def text_bytes(example: Example) -> int:
    return sum(len(value) for value in example.values())


def length_sorted_calls(batch: Sequence[Example], rows_per_call: int) -> Iterable[list[int]]:
    """The batch's indices sorted by text length (stable), in runs of ``rows_per_call``."""
    order = sorted(range(len(batch)), key=lambda index: text_bytes(batch[index]))
    return (order[start : start + rows_per_call] for start in range(0, len(order), rows_per_call))
