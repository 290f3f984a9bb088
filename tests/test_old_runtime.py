"""SavedModels exported with TF 2.21 run in the oldest supported TensorFlow, unchanged.

Model-server fleets lag behind the exporting TensorFlow. `make test` installs
tensorflow-cpu==2.12.0 (the oldest release for Python 3.11) into `.venv-tf-oldest` and points
TFPIPE_OLDEST_PYTHON at it; that runtime loads each exported model (a classifier per
tokenizer family, and one export per token-level task) with the TF1 `serve` loader TF Serving
uses (and in make test-full through `tf.saved_model.load` signatures too, as Python code on an
old TensorFlow would) and must return the same token ids, probabilities, entities, answers and
strings as TF 2.21.
TF 2.12 loads all the exports in one process; TF 2.21's results come from the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import SENTENCES, cached_export, exported_classifier, save_tiny_checkpoint
from pipeline_checkpoints import albert_classifier, exported_text_classifier, roberta_classifier
from samples import FULL, slow_beyond
from task_checkpoints import (
    exported_fill_mask,
    exported_question_answering,
    exported_token_classification,
)
from texts import generate_texts
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from trained_tokenizers import CL100K, byte_level_trainer, trained_checkpoint

from tfpipe.export import runtime_compat
from tfpipe.pipelines import pipeline

OLDEST_PYTHON = os.environ.get("TFPIPE_OLDEST_PYTHON")
needs_oldest = pytest.mark.skipif(
    not OLDEST_PYTHON, reason="TFPIPE_OLDEST_PYTHON is not set (make test sets it)"
)
TEXTS = [
    *SENTENCES,
    "",
    "  whitespace\t\nruns\u3000and NBSP\xa0 ",
    "naïve café 👍🏽 日本語のテキスト İstanbul",
    "It's a long text. " * 60,
    "Paris is the [MASK] of France.",  # fill-mask's answer (BERT's mask token)
]
# Text classifiers of four tokenizer families, and one export per token-level task.
TASKS = ("token-classification", "question-answering", "fill-mask")
FAMILIES = ("wordpiece", "byte-level-bpe", "unigram", "split-bpe", *TASKS)
# The default run's: the most op types (Unigram's loops, Split's regex, NFC, byte-level
# BPE's merges). The others add no op type, and every export's ops are checked against TF
# 2.12's when it is written; make test-full loads them all, one export per task among them.
DEFAULT_FAMILIES = ("unigram", "split-bpe")
# Each loader's first run of a signature costs seconds of graph optimization (most of a Unigram
# tokenizer's 2 s first call), so the default run takes TF Serving's loader only.
LOADERS = ("tf2", "tf1") if FULL else ("tf1",)
# Each export's signatures through each of LOADERS (tf.saved_model.load, "tf2"; the TF1 loader,
# "tf1"), every signature input fed the texts (a question their first 20 characters: a long
# one leaves its context no room, an error as in transformers), strings decoded. TF 2.21 runs
# it in the test process (TensorFlow is already loaded there); TF 2.12 in a process of its own,
# all exports at once.
LOAD_AND_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    def as_list(value):
        value = np.asarray(value)
        if value.dtype == object:
            decode = np.vectorize(lambda b: b.decode("utf-8", "backslashreplace"), otypes=[object])
            return decode(value).tolist()
        return value.tolist()

    def fed(name, texts):
        return [text[:20] for text in texts] if name == "question" else texts

    def run(path, texts, loaders):
        result = {"version": tf.__version__, **{loader: {} for loader in loaders}}
        if "tf2" in loaders:
            loaded = tf.saved_model.load(path)
            for name in ("serving_default", "tokenize"):
                function = loaded.signatures[name]
                inputs = {key: tf.constant(fed(key, texts))
                          for key in function.structured_input_signature[1]}
                result["tf2"][name] = {k: as_list(v) for k, v in function(**inputs).items()}
        if "tf1" not in loaders:
            return result
        with tf.compat.v1.Session(graph=tf.Graph()) as session:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
            for name in ("serving_default", "tokenize"):
                signature = meta.signature_def[name]
                fetches = {k: v.name for k, v in signature.outputs.items()}
                feed = {v.name: np.asarray(fed(k, texts), dtype=object)
                        for k, v in signature.inputs.items()}
                out = session.run(fetches, feed)
                result["tf1"][name] = {k: as_list(v) for k, v in out.items()}
        return result
""")
LOADER = LOAD_AND_RUN + textwrap.dedent("""
    paths, texts, loaders = (json.loads(argument) for argument in sys.argv[1:4])
    print(json.dumps({path: run(path, texts, loaders) for path in paths}))
""")
TASK_EXPORTS = {
    "token-classification": exported_token_classification,
    "question-answering": exported_question_answering,
    "fill-mask": exported_fill_mask,
}


def run_in_this_process(paths: list[Path]) -> dict[str, dict]:
    """Each export's outputs in this process's TensorFlow, keyed by its path (as JSON would
    carry them from a subprocess)."""
    namespace: dict = {}
    exec(LOAD_AND_RUN, namespace)
    return json.loads(json.dumps({str(path): namespace["run"](str(path), TEXTS, LOADERS)
                                  for path in paths}))


def run_loader(python: str, paths: list[Path]) -> dict[str, dict]:
    """Each export's outputs in the runtime of ``python``, keyed by its path."""
    completed = subprocess.run(
        [python, "-c", LOADER, json.dumps([str(path) for path in paths]), json.dumps(TEXTS),
         json.dumps(LOADERS)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def classifier_with_tokenizer(name: str, tokenizer: Path, vocab_size: int) -> Path:
    """A tiny BERT classifier whose embeddings fit `tokenizer`, exported as NAME/1."""
    checkpoint = save_tiny_checkpoint(
        name, "TFBertForSequenceClassification", vocab_size=vocab_size, num_labels=2
    )
    return cached_export(
        name,
        lambda: pipeline("text-classification", checkpoint, tokenizer=tokenizer, max_length=64),
        __file__,
    ).path


def train_split_tokenizer() -> tuple[Tokenizer, dict]:
    """A Llama-3-style tokenizer: cl100k Split with its look-ahead, ByteLevel, BPE."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.NFC()  # its composition table must be saved with the model
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.train_from_iterator(generate_texts(1000, seed=3),
                            byte_level_trainer(1000, ["<s>", "<pad>"]))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B:1", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>",
              "bos_token": "<s>", "model_max_length": 512}
    return tok, config


def exported(family: str, shared_dir: Path | None) -> Path:
    """The family's export: the ones the pipeline tests make where they cover it (one export
    each per run), a Llama-3-style Split tokenizer's here."""
    if family == "wordpiece":
        return exported_classifier().path
    if family == "byte-level-bpe":
        return exported_text_classifier(roberta_classifier()).path
    if family in TASKS:
        return TASK_EXPORTS[family]().path
    if family == "split-bpe":
        tokenizer = trained_checkpoint("old-runtime split-bpe", train_split_tokenizer, __file__)
        return classifier_with_tokenizer(family, tokenizer, 1000)
    assert family == "unigram" and shared_dir is not None
    albert = albert_classifier(shared_dir / "tokenizers" / "albert-base-v2")
    return exported_text_classifier(albert).path


@pytest.fixture(scope="module")
def shared_or_none(request) -> Path | None:
    path = request.config.rootpath.parent / "shared"
    return path if (path / "tokenizers").is_dir() else None


@pytest.fixture(scope="module")
def outputs_by_runtime(request, shared_or_none) -> dict[str, dict[str, dict]]:
    """``{"new"|"old": {family: outputs}}``: each selected family's export run in each
    runtime."""
    selected = {item.callspec.params["family"] for item in request.session.items
                if item.path == request.path and hasattr(item, "callspec")}
    families = [f for f in FAMILIES if f in selected and (shared_or_none or f != "unigram")]
    paths = {family: exported(family, shared_or_none) for family in families}
    by_path = {"new": run_in_this_process(list(paths.values())),
               "old": run_loader(OLDEST_PYTHON, list(paths.values()))}
    return {name: {family: outputs[str(path)] for family, path in paths.items()}
            for name, outputs in by_path.items()}


@needs_oldest
@pytest.mark.parametrize("family", slow_beyond(FAMILIES, DEFAULT_FAMILIES))
def test_export_runs_unchanged_in_oldest_supported_tensorflow(family, shared_or_none,
                                                              outputs_by_runtime):
    if family not in outputs_by_runtime["new"]:
        pytest.skip("../shared/tokenizers is not available")
    new, old = outputs_by_runtime["new"][family], outputs_by_runtime["old"][family]
    # TF 2.12 is the oldest release for Python 3.11; newer Pythons start later.
    if sys.version_info < (3, 12):
        assert old["version"] == runtime_compat.MINIMUM_TENSORFLOW
    for loader in LOADERS:
        assert old[loader]["tokenize"] == new[loader]["tokenize"], loader
        for key, value in new[loader]["serving_default"].items():
            if np.asarray(value).dtype.kind in "OU":
                assert old[loader]["serving_default"][key] == value, (loader, key)
            else:
                np.testing.assert_allclose(old[loader]["serving_default"][key], value,
                                           atol=1e-6)


def test_growable_tensor_array_is_refused_as_raising_the_minimum_runtime():
    """TensorArray(dynamic_size=True) fails on TF 2.12's kernels; export must say so."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def grow(count):
        array = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        _, array = tf.while_loop(lambda i, a: i < count, lambda i, a: (i + 1, a.write(i, i)),
                                 (0, array))
        return array.stack()

    graph = grow.get_concrete_function().graph.as_graph_def()
    problems = runtime_compat.unsupported_nodes(graph, runtime_compat.load_table())
    assert problems == {"TensorListSetItem.resize_if_index_out_of_bounds"}
