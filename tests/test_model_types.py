"""Every text model type transformers' TF auto classes map, for each task it has a head for
and for feature extraction, in tfpipe's graph: traced once with the sequence length unknown
(as an export is), its outputs those of the model called on the same padded batch; or, for a
type a text pipeline cannot feed, a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from samples import slow_beyond

from tfpipe.model_config import ModelLoadError
from tfpipe.model_types import NON_TEXT_MODEL_TYPES
from tfpipe.transformer import TransformerLayer

TASK_MAPPINGS = {
    "text-classification": "TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "token-classification": "TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "question-answering": "TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "fill-mask": "TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES",
}
# Small sizes under every name the families use for them; a config takes those it has.
TINY_SIZES = dict(
    vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=37, embedding_size=32, pooler_hidden_size=32, d_model=32, d_head=16,
    d_inner=37, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, head_dim=16,
    num_key_value_heads=2, max_position_embeddings=64, encoder_layers=2, decoder_layers=2,
    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=37,
    decoder_ffn_dim=37, attention_window=4,
)
# Settings a family needs: Funnel's sizes are blocks of layers, and its bare model is one of
# two classes, chosen by the checkpoint's architectures (None fails in transformers).
FAMILY_SETTINGS = {"funnel": dict(block_sizes=[1, 1], block_repeats=[1, 1],
                                  num_decoder_layers=1, architectures=["FunnelModel"])}
# DeBERTa v3's attention (relative positions both ways), the one its checkpoints use.
RELATIVE_ATTENTION = dict(relative_attention=True, pos_att_type=["p2c", "c2p"],
                          position_buckets=256, max_relative_positions=-1,
                          position_biased_input=False)
# Three rows: full, padded after 3 tokens, full; id 2 ends each (BART's classifier reads
# the last end-of-sequence token of every row).
IDS = np.array([[5, 300, 400, 7, 9, 2], [5, 500, 2, 0, 0, 0], [5, 6, 7, 8, 9, 2]], np.int32)
MASK = (np.arange(6)[None] < np.array([[6], [3], [6]])).astype(np.int32)
# Refused: models needing more than text, and Transformer-XL, which takes no attention mask.
REFUSED = {*NON_TEXT_MODEL_TYPES, "transfo-xl"}
# Text models the four tasks' auto classes do not map whose encoder feature extraction runs.
ENCODER_ONLY_TYPES = ("t5", "mt5")


def task_model_types() -> list[tuple[str, str]]:
    """(task, model type) for every type the tasks' auto classes map; feature-extraction
    (the bare model) for every one of those types."""
    from transformers.models.auto import modeling_tf_auto

    pairs = [(task, model_type) for task, mapping in TASK_MAPPINGS.items()
             for model_type in sorted(getattr(modeling_tf_auto, mapping))]
    text_types = sorted({model_type for _, model_type in pairs} | set(ENCODER_ONLY_TYPES))
    return pairs + [("feature-extraction", model_type) for model_type in text_types]


def tiny_config(model_type: str) -> dict:
    import transformers

    config = transformers.CONFIG_MAPPING[model_type]()
    sizes = {**TINY_SIZES, **FAMILY_SETTINGS.get(model_type, {}),
             **(RELATIVE_ATTENTION if model_type.startswith("deberta") else {})}
    for key, value in sizes.items():
        # A size a config derives (a property, such as Funnel's layer count) is not set.
        if not isinstance(getattr(type(config), key, None), property) and hasattr(config, key):
            setattr(config, key, value)
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = 0
    return config.to_dict()


def task_output(task: str, outputs):
    import tensorflow as tf

    if task == "feature-extraction":
        return outputs.last_hidden_state
    if task == "question-answering":
        return tf.stack([outputs.start_logits, outputs.end_logits], axis=-1)
    return outputs.logits


@pytest.mark.parametrize(
    "task, model_type",
    slow_beyond(task_model_types(),
                [("text-classification", "deberta-v2"), ("text-classification", "tapas")]),
)
def test_model_type_runs_in_tfpipes_graph_or_is_refused(task, model_type):
    import tensorflow as tf

    config = tiny_config(model_type)
    if model_type in REFUSED:
        with pytest.raises(ModelLoadError, match="need|takes no"):
            TransformerLayer(task, config)
        return
    layer = TransformerLayer(task, config)
    features = {"input_ids": IDS, "attention_mask": MASK}
    if "token_type_ids" in layer.model_input_names:
        features["token_type_ids"] = np.zeros_like(IDS)
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in features}
    traced = tf.function(layer.__call__, input_signature=[spec], autograph=False)
    got = traced({name: tf.constant(value) for name, value in features.items()}).numpy()
    expected = task_output(task, layer.hf_model(features, training=False)).numpy()
    if got.ndim == 3:  # per-token outputs: padding positions are not compared
        got, expected = got * MASK[..., None], expected * MASK[..., None]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6)


def test_funnel_runs_whole_batches_padded_as_the_hf_flow_pads():
    """Funnel pools pairs of positions, so a text's outputs depend on the width it is padded
    to: chunks of one row each would answer the short row differently."""
    layer = TransformerLayer("text-classification", tiny_config("funnel"), micro_batch_size=1)
    assert layer.micro_batch_size is None and layer.max_chunk_tokens is None
    features = {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": np.zeros_like(IDS)}
    expected = layer.hf_model(features, training=False).logits.numpy()
    np.testing.assert_allclose(layer(features).numpy(), expected, atol=2e-6)
