"""`tfpipe.keras.pipeline` on keras-hub's BERT, DistilBERT, ALBERT and GPT-2 backbones:
outputs within 1e-5 of transformers' TF model on the same checkpoint, config settings
honoured or refused by name, `.keras` files, and `tfpipe.export` of these models, audited in
a process without tensorflow-text.

Runs in a test process of its own (tests/run_isolated.py), apart from tf-keras layers.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras3_checkpoints import (  # noqa: E402
    ATOL,
    hf_embeddings,
    hf_probabilities,
    minilm_classifier,
    minilm_with_activation,
    run,
    tiny_albert,
    tiny_distilbert,
    tiny_gpt2,
    tiny_roberta,
)
from model_fixtures import minilm_path  # noqa: E402
from texts import EDGE_CASES  # noqa: E402

from tfpipe.export.saved_model import DEFAULT_WARMUP_TEXTS  # noqa: E402
from tfpipe.keras import (  # noqa: E402
    albert,
    distilbert,
    export,
    gpt2,
    roberta,
)
from tfpipe.keras.bert import backbone_arguments  # noqa: E402
from tfpipe.keras.pipelines import PipelineError, pipeline  # noqa: E402
from tfpipe.model_config import ModelLoadError  # noqa: E402

TEXTS = [
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "So have I!",
    "",
    "Straße ẞ ß STRASSE, naïve café — 東京 and emoji 🤗",
    "word " * 300,
    *EDGE_CASES[:6],
]


@functools.cache
def embedder():
    return pipeline("feature-extraction", minilm_path())


@functools.cache
def classifier():
    return pipeline("text-classification", minilm_classifier())


def test_feature_extraction_matches_transformers():
    """MiniLM's sentence-transformers settings: mean pooling, normalised, 256 tokens."""
    ours = run(embedder(), TEXTS)["embedding"]
    expected = hf_embeddings(minilm_path(), TEXTS, 256, normalize=True)
    assert np.abs(ours - expected).max() <= ATOL


def test_text_classification_matches_transformers():
    ours = run(classifier(), TEXTS)
    expected = hf_probabilities(minilm_classifier(), TEXTS)
    assert np.abs(ours["probabilities"] - expected).max() <= ATOL
    labels = ["negative", "neutral", "positive"]
    assert [label.decode() for label in ours["label"]] == [labels[i] for i in expected.argmax(-1)]
    np.testing.assert_allclose(ours["score"], expected.max(-1), atol=ATOL)


def test_an_empty_batch_gives_empty_outputs():
    empty = {"text": tf.constant([], tf.string)}
    assert embedder()(empty)["embedding"].shape == (0, 384)
    outputs = classifier()(empty)
    assert outputs["probabilities"].shape == (0, 3) and outputs["label"].shape == (0,)


@pytest.mark.slow
def test_text_pair_classification_matches_transformers():
    model = pipeline("text-classification", minilm_classifier(), text_pair=True)
    pairs = TEXTS[1:] + TEXTS[:1]
    ours = run(model, TEXTS, text_pair=pairs)["probabilities"]
    assert np.abs(ours - hf_probabilities(minilm_classifier(), TEXTS, pairs)).max() <= ATOL


def test_the_checkpoints_activation_is_built_not_keras_hubs_approximation():
    """MiniLM says "gelu" (erf); keras-hub's BertBackbone hard-codes the tanh approximation."""
    backbone = embedder().get_layer("sequence_encoder").backbone
    dense = backbone.transformer_layers[0]._feedforward_intermediate_dense
    x = tf.constant([-2.0, 1.0, 3.0])
    exact = x * 0.5 * (1.0 + tf.math.erf(x / np.sqrt(2.0)))
    np.testing.assert_allclose(dense.activation(x), exact, atol=1e-7)


@pytest.mark.slow
def test_another_configured_activation_matches_transformers():
    path = minilm_with_activation("gelu_new")
    ours = run(pipeline("feature-extraction", path, max_length=64), TEXTS)["embedding"]
    assert np.abs(ours - hf_embeddings(path, TEXTS, 64, normalize=True)).max() <= ATOL


def test_decoder_embeddings_match_transformers():
    """GPT-2 (keras-hub's GPT2Backbone): mean-pooled token states of transformers' TFGPT2Model,
    right-padded with the tokenizer's pad token (its eos)."""
    path = tiny_gpt2()
    model = pipeline("feature-extraction", path)
    ours = run(model, TEXTS)["embedding"]
    assert np.abs(ours - hf_embeddings(path, TEXTS, 64, normalize=False)).max() <= ATOL
    assert run(model, [])["embedding"].shape == (0, 32)
    with pytest.raises(PipelineError, match="gpt2 models for feature-extraction"):
        pipeline("text-classification", path)


FAMILY_TEXTS = [*TEXTS, "a <pad> inside", "<pad><pad> first", "<s> and </s> <unk>"]


# RoBERTa, the family with the most of its own (its backbone), by default; all in the full run.
@pytest.mark.parametrize("checkpoint", [
    pytest.param(tiny_distilbert, id="distilbert", marks=pytest.mark.slow),
    pytest.param(tiny_albert, id="albert", marks=pytest.mark.slow),
    pytest.param(tiny_roberta, id="roberta"),
])
def test_other_encoder_families_match_transformers(checkpoint):
    """DistilBERT (its head: a ReLU layer on the first token), ALBERT (factorised
    embeddings, blocks shared across layers) and RoBERTa (positions counted past padding
    tokens, even ones written in the text; a tanh layer on the first token), tiny and seeded
    random: probabilities, and embeddings from the same checkpoint."""
    path = checkpoint()
    ours = run(pipeline("text-classification", path), FAMILY_TEXTS)["probabilities"]
    assert np.abs(ours - hf_probabilities(path, FAMILY_TEXTS)).max() <= ATOL
    embedding = run(pipeline("feature-extraction", path), FAMILY_TEXTS)["embedding"]
    expected = hf_embeddings(path, FAMILY_TEXTS, 64, normalize=False)
    assert np.abs(embedding - expected).max() <= ATOL


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", [tiny_distilbert, tiny_albert, tiny_roberta],
                         ids=["distilbert", "albert", "roberta"])
def test_other_families_round_trip_keras_files_and_export(checkpoint, tmp_path):
    model = pipeline("text-classification", checkpoint())
    model.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras")
    texts = FAMILY_TEXTS[-3:]
    np.testing.assert_array_equal(run(reloaded, texts)["probabilities"],
                                  run(model, texts)["probabilities"])
    exported = export(model, tmp_path / "saved_models" / "classifier" / "1")
    served = exported.served_outputs["probabilities"]
    expected = hf_probabilities(checkpoint(), list(DEFAULT_WARMUP_TEXTS))
    assert np.abs(served - expected).max() <= ATOL


FAMILY_REFUSED = [
    (distilbert, "DistilBertConfig", {"activation": "silu"}, "activation='silu'"),
    (distilbert, "DistilBertConfig", {"attention_dropout": 0.3}, "attention_dropout=0.3"),
    (distilbert, "DistilBertConfig", {"n_heads": None}, "n_heads"),
    (albert, "AlbertConfig", {"num_hidden_groups": 5}, "num_hidden_groups=5"),
    (albert, "AlbertConfig", {"position_embedding_type": "relative_key"},
     "position_embedding_type"),
    (albert, "AlbertConfig", {"hidden_act": "silu"}, "hidden_act='silu'"),
    (roberta, "RobertaConfig", {"is_decoder": True}, "is_decoder"),
    (roberta, "RobertaConfig", {"hidden_act": "silu"}, "hidden_act='silu'"),
]


@pytest.mark.parametrize(("module", "config_class", "change", "named"), FAMILY_REFUSED)
def test_other_families_refuse_settings_by_name(module, config_class, change, named):
    """Each family's builder on transformers' default config, with one setting changed."""
    import transformers

    config = {**getattr(transformers, config_class)().to_dict(), **change}
    with pytest.raises(ModelLoadError, match=named):
        module.backbone_arguments(config, "config.json")


@pytest.mark.parametrize(("model_type", "config_class"), [
    ("bert", "BertConfig"), ("distilbert", "DistilBertConfig"), ("albert", "AlbertConfig"),
    ("roberta", "RobertaConfig"), ("xlm-roberta", "XLMRobertaConfig"), ("gpt2", "GPT2Config"),
])
def test_each_familys_default_config_is_built(model_type, config_class):
    """transformers' own defaults (ALBERT's: 12 layers in one group, gelu_new) are honoured."""
    import transformers

    from tfpipe.keras.families import FAMILIES

    config = getattr(transformers, config_class)().to_dict()
    assert config["model_type"] == model_type
    arguments = FAMILIES[model_type].arguments(config, "config.json")
    assert arguments["hidden_act"] == config.get("hidden_act", config.get("activation",
                                                 config.get("activation_function")))


REFUSED = [
    ({"hidden_act": "silu"}, "hidden_act='silu'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"is_decoder": True}, "is_decoder"),
    ({"add_cross_attention": True}, "add_cross_attention"),
    ({"pruned_heads": {"0": [1]}}, "pruned_heads"),
    ({"attention_probs_dropout_prob": 0.2}, "attention_probs_dropout_prob"),
    ({"model_type": "roberta"}, "model_type 'roberta'"),
    ({"num_hidden_layers": None}, "num_hidden_layers"),
]


@pytest.mark.parametrize(("change", "named"), REFUSED)
def test_settings_keras_hub_cannot_honour_are_refused_by_name(change, named):
    config = {**json.loads((minilm_path() / "config.json").read_text()), **change}
    with pytest.raises(ModelLoadError, match=named.replace("(", r"\(")):
        backbone_arguments(config, "config.json")


@pytest.mark.slow
def test_decoder_embedder_exports(tmp_path):
    exported = export(pipeline("feature-extraction", tiny_gpt2()),
                      tmp_path / "saved_models" / "gpt2" / "1")
    assert exported.metadata["task"] == "feature-extraction"
    expected = hf_embeddings(tiny_gpt2(), ["I've been waiting for a HuggingFace course my "
                                           "whole life.", "I hate this so much!", ""], 64, False)
    np.testing.assert_allclose(exported.served_outputs["embedding"], expected, atol=ATOL)


GPT2_REFUSED = [
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"activation_function": "silu"}, "activation_function='silu'"),
    ({"attn_pdrop": 0.0}, "attn_pdrop=0.0"),
    ({"n_head": None}, "n_head"),
]


@pytest.mark.parametrize(("change", "named"), GPT2_REFUSED)
def test_gpt2_settings_keras_hub_cannot_honour_are_refused_by_name(change, named):
    config = {**json.loads((tiny_gpt2() / "config.json").read_text()), **change}
    with pytest.raises(ModelLoadError, match=named):
        gpt2.backbone_arguments(config, "config.json")


def test_honoured_settings_reach_the_backbone():
    config = json.loads((minilm_path() / "config.json").read_text())
    arguments = backbone_arguments({**config, "layer_norm_eps": 1e-7, "type_vocab_size": 3}, "c")
    assert arguments["layer_norm_eps"] == 1e-7 and arguments["num_segments"] == 3
    assert arguments["hidden_act"] == "gelu"


def test_a_bare_encoder_is_refused_for_classification_naming_the_weights():
    with pytest.raises(ModelLoadError, match="classifier.weight"):
        pipeline("text-classification", minilm_path())
    with pytest.raises(PipelineError, match="positions"):
        pipeline("feature-extraction", minilm_path(), max_length=1000)
    with pytest.raises(PipelineError, match="fill-mask"):
        pipeline("fill-mask", minilm_path())


@pytest.mark.slow  # the default run saves the tokenizer's; fine-tuning saves a classifier
def test_keras_file_round_trip_keeps_the_outputs(tmp_path):
    model = embedder()
    model.save(tmp_path / "embedder.keras")
    reloaded = keras.saving.load_model(tmp_path / "embedder.keras")
    np.testing.assert_allclose(run(reloaded, TEXTS[:4])["embedding"],
                               run(model, TEXTS[:4])["embedding"], atol=1e-6)


FRESH_PROCESS = """
import json, sys
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
saved_model = saved_model_pb2.SavedModel.FromString(open(sys.argv[1], "rb").read())
ops = set()
for graph in saved_model.meta_graphs:
    ops |= {node.op for node in graph.graph_def.node}
    for function in graph.graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    ops -= {function.signature.name for function in graph.graph_def.library.function}
foreign = sorted(op for op in ops if op_def_registry.get(op) is None or "PyFunc" in op)
audit = {"ops": len(ops), "foreign": foreign, "tensorflow_text": "tensorflow_text" in sys.modules}
watched = ("keras", "keras_hub", "tensorflow_text")
before = {m for m in sys.modules if m.split(".")[0] in watched}
import tfpipe
after_tfpipe = {m for m in sys.modules if m.split(".")[0] in watched}
imports = {"added_by_tfpipe": sorted(after_tfpipe - before),
           "tfpipe.keras": "tfpipe.keras" in sys.modules}
import tfpipe.keras
imports["keras_hub_after_tfpipe_keras"] = "keras_hub" in sys.modules
imports["tensorflow_text_after_tfpipe_keras"] = "tensorflow_text" in sys.modules
print(json.dumps({"audit": audit, "imports": imports}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export(classifier(), tmp_path_factory.mktemp("saved_models") / "classifier" / "1")


@pytest.fixture(scope="module")
def fresh_process(exported) -> dict:
    """A fresh process (TensorFlow only at first): the export's op audit, then what
    importing tfpipe and tfpipe.keras imports."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(exported.path / "saved_model.pb")],
        capture_output=True, text=True, check=True, env=environment,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_export_of_a_keras3_pipeline_holds_no_tensorflow_text_op(exported, fresh_process):
    """keras-hub imports tensorflow-text in this process; the export must not need it. The
    audit runs in a fresh process that never imports it (where its ops are unregistered)."""
    assert "tensorflow_text" in sys.modules  # so this process could not tell
    assert exported.metadata["task"] == "text-classification"
    assert exported.metadata["labels"] == ["negative", "neutral", "positive"]
    np.testing.assert_allclose(exported.served_outputs["probabilities"],
                               hf_probabilities(minilm_classifier(), [
                                   "I've been waiting for a HuggingFace course my whole life.",
                                   "I hate this so much!", ""]), atol=ATOL)
    audit = fresh_process["audit"]
    assert audit["ops"] > 50 and audit["foreign"] == [] and not audit["tensorflow_text"]


def test_import_tfpipe_imports_no_keras3_or_keras_hub(fresh_process):
    """TensorFlow itself imports Keras 3's modules; tfpipe adds none, nor keras_hub,
    tensorflow_text or tfpipe.keras; tfpipe.keras imports keras_hub only for pipelines."""
    assert fresh_process["imports"] == {
        "added_by_tfpipe": [], "tfpipe.keras": False,
        "keras_hub_after_tfpipe_keras": False, "tensorflow_text_after_tfpipe_keras": False,
    }
