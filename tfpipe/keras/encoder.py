"""`BackboneLayer`: a keras-hub backbone fed by the tokenizer's outputs.

The tokenizer gives an empty batch (or a batch of texts without tokens) as `[0, 0]` ids,
which the backbone's kernels reject (`Biases must be 1D`); a served batch must still get
well-formed `[0, ...]` outputs. As `tfpipe.TransformerLayer` does for tf-keras, the layer
pads such a batch to one row and column, runs the backbone, and cuts the padding off.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

BACKBONE_OUTPUTS = ("sequence_output", "pooled_output")


@keras.saving.register_keras_serializable(package="tfpipe.keras")
class BackboneLayer(keras.layers.Layer):
    """Tokenizer outputs in, the backbone's ``output`` (token states or pooled) out."""

    def __init__(self, backbone: keras.Model, output: str = "sequence_output", **kwargs: Any):
        super().__init__(**kwargs)
        if output not in BACKBONE_OUTPUTS:
            raise ValueError(f"output must be one of {BACKBONE_OUTPUTS}, got {output!r}")
        self.backbone = backbone
        self.output_name = output

    def build(self, *args: Any) -> None:
        self.built = True  # the backbone is built with its weights

    def call(self, input_ids, attention_mask, token_type_ids=None):
        shape = tf.shape(input_ids)
        batch, width = shape[0], shape[1]
        missing = [[0, 1 - tf.minimum(batch, 1)], [0, 1 - tf.minimum(width, 1)]]
        inputs = {"token_ids": input_ids, "padding_mask": attention_mask}
        if "segment_ids" in self.backbone.input:  # BERT's; decoders take none
            inputs["segment_ids"] = (
                tf.zeros_like(input_ids) if token_type_ids is None else token_type_ids
            )
        outputs = self.backbone({name: tf.pad(value, missing) for name, value in inputs.items()})
        # BERT returns sequence and pooled outputs, decoders their token states alone.
        output = (outputs[self.output_name] if isinstance(outputs, dict) else outputs)[:batch]
        return output[:, :width] if self.output_name == "sequence_output" else output

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "output": self.output_name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BackboneLayer:
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
