"""Checkpoints and tokenizer files are untrusted input: no code runs, nothing is fetched,
malformed or hostile files fail with a clear error in bounded memory, and exports carry no
trace of the exporting machine's file system."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import sys
import tracemalloc
from pathlib import Path

import pytest
import tensorflow as tf
from model_fixtures import (
    TOKENIZER_FILES,
    classifier_checkpoint,
    exported_classifier,
    minilm_path,
    work_dir,
)

import tfpipe
from tfpipe import TokenizerLayer
from tfpipe.tokenization.checkpoint import MAX_TOKENIZER_JSON_BYTES
from tfpipe.transformer import ModelLoadError


class RunsCodeWhenUnpickled:
    """A pickle payload that would create `marker` if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickle_only_checkpoint(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    shutil.copy(classifier_checkpoint() / "config.json", folder / "config.json")
    for name in TOKENIZER_FILES:
        shutil.copy(classifier_checkpoint() / name, folder / name)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(marker)))
    return folder


@pytest.mark.skipif("torch" in sys.modules, reason="with torch, allow_pickle=True would load")
@pytest.mark.parametrize("allow_pickle", [False, True])
def test_pickled_weights_are_never_unpickled_unless_allowed(tmp_path, allow_pickle):
    marker = tmp_path / "unpickled"
    folder = pickle_only_checkpoint(tmp_path / "checkpoint", marker)
    expected = "needs torch" if allow_pickle else "allow_pickle=True"
    with pytest.raises(ModelLoadError, match=expected):
        tfpipe.pipeline("text-classification", folder, allow_pickle=allow_pickle)
    assert not marker.exists()


REMOTE_CODE = "import pathlib\npathlib.Path({marker!r}).touch()\n"


def remote_code_checkpoint(folder: Path, marker: Path, model_type: str) -> Path:
    """The classifier checkpoint, its config and tokenizer config pointing at code files that
    create `marker` when imported."""
    shutil.copytree(classifier_checkpoint(), folder)
    for module in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (folder / f"{module}.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModel": "modeling_evil.EvilModel",
        "TFAutoModel": "modeling_evil.TFEvilModel",
        "TFAutoModelForSequenceClassification": "modeling_evil.TFEvilClassifier",
    }
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@pytest.mark.parametrize("model_type", ["bert", "evil"], ids=["known-type", "unknown-type"])
def test_remote_code_in_a_checkpoint_is_never_run(tmp_path, model_type):
    """transformers may load a known model type with its own classes or refuse an unknown
    one; either way the checkpoint's Python files are never imported."""
    marker = tmp_path / "remote-code-ran"
    folder = remote_code_checkpoint(tmp_path / "checkpoint", marker, model_type)
    try:
        model = tfpipe.pipeline("text-classification", folder)
    except ValueError as error:
        assert model_type == "evil", error
    else:
        assert model_type == "bert"
        assert model({"text": tf.constant(["fine"])})["probabilities"].shape == (1, 3)
    assert not marker.exists()


def tokenizer_document() -> dict:
    return json.loads((minilm_path() / "tokenizer.json").read_text(encoding="utf-8"))


def nested_normalizer(depth: int) -> dict:
    normalizer = {"type": "Lowercase"}
    for _ in range(depth):
        normalizer = {"type": "Sequence", "normalizers": [normalizer]}
    return normalizer


def hostile_tokenizer_json(kind: str) -> str:
    """A malformed or hostile tokenizer.json of one `kind`."""
    document = tokenizer_document()
    model = document["model"]
    depth = 100_000
    return {
        "truncated": json.dumps(document)[:5000],
        "not-an-object": "[1, 2, 3]",
        "model-is-a-list": json.dumps({**document, "model": []}),
        "vocab-is-a-string": json.dumps({**document, "model": {**model, "vocab": "oops"}}),
        "negative-id": json.dumps({**document, "model": {**model, "vocab": {"a": -5}}}),
        "added-tokens-is-a-number": json.dumps({**document, "added_tokens": 5}),
        "normalizer-type-is-a-number": json.dumps({**document, "normalizer": {"type": 5}}),
        "nested-past-tokenizers-limit": json.dumps(
            {**document, "normalizer": nested_normalizer(200)}
        ),
        "nested-past-python-limit": '{"normalizer": '
        + '{"type": "Sequence", "normalizers": [' * depth
        + '{"type": "Lowercase"}'
        + "]}" * depth
        + "}",
    }[kind]


HOSTILE_KINDS = [
    "truncated",
    "not-an-object",
    "model-is-a-list",
    "vocab-is-a-string",
    "negative-id",
    "added-tokens-is-a-number",
    "normalizer-type-is-a-number",
    "nested-past-tokenizers-limit",
    "nested-past-python-limit",
]


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@pytest.mark.parametrize("source", ["file", "folder"])
def test_malformed_tokenizer_json_fails_with_a_clear_error(tmp_path, kind, source):
    """A ValueError that names the file (or the component tfpipe cannot compile)."""
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    for name in TOKENIZER_FILES[1:]:
        shutil.copy(minilm_path() / name, folder / name)
    (folder / "tokenizer.json").write_text(hostile_tokenizer_json(kind), encoding="utf-8")
    path = folder / "tokenizer.json" if source == "file" else folder
    with pytest.raises(ValueError, match=r"tokenizer\.json|cannot compile") as error:
        TokenizerLayer.from_pretrained(path)
    assert len(str(error.value)) < 1000


def write_vocabulary_tokenizer_json(path: Path, entries: int) -> None:
    """A WordPiece tokenizer.json with `entries` vocabulary entries, written in chunks."""
    document = tokenizer_document()
    head, tail = json.dumps({**document, "model": {**document["model"], "vocab": {}}}).split(
        '"vocab": {}'
    )
    with path.open("w", encoding="utf-8") as file:
        file.write(head + '"vocab": {')
        chunk = 1_000_000
        for start in range(0, entries, chunk):
            stop = min(start + chunk, entries)
            file.write(",".join(f'"w{i:x}": {i}' for i in range(start, stop)))
            if stop < entries:
                file.write(",")
        file.write("}" + tail)


def test_ten_million_entry_vocabulary_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "tokenizer.json"
    write_vocabulary_tokenizer_json(path, 10_000_000)
    assert path.stat().st_size > MAX_TOKENIZER_JSON_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="over tfpipe's limit"):
            TokenizerLayer.from_pretrained(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB allocated to refuse the file"


def test_an_oversized_tokenizer_json_in_a_layer_config_is_refused():
    """A hostile .keras file reaches the layer through from_config, not a file."""
    layer = TokenizerLayer.from_pretrained(minilm_path())
    config = {**layer.get_config(), "tokenizer_json": " " * (MAX_TOKENIZER_JSON_BYTES + 1)}
    with pytest.raises(ValueError, match="over tfpipe's limit"):
        TokenizerLayer.from_config(config)


def machine_paths() -> set[str]:
    """Absolute paths of the exporting machine an export must not mention."""
    import tfpipe as package

    paths = {
        str(work_dir()),
        str(classifier_checkpoint()),
        str(minilm_path()),
        str(Path(package.__file__).parent),
        sys.prefix,
        os.getcwd(),
        str(Path.home()),
    }
    return {path for path in paths if len(path) > 1}


def test_exported_saved_model_holds_no_absolute_paths_of_the_exporting_machine():
    exported = exported_classifier().path
    needles = {path: path.encode() for path in machine_paths()}
    for file in exported.rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            found = [path for path, needle in needles.items() if needle in content]
            assert not found, f"{file.relative_to(exported)} mentions {found}"


def test_socket_guard_refuses_network_connections_and_allows_loopback():
    conftest = sys.modules["conftest"]
    refused = pytest.raises(conftest.NetworkAccessError, match="must not use the network")
    with socket.socket() as client, refused:
        client.connect(("203.0.113.1", 443))
    assert conftest.NETWORK_ATTEMPTS == [("203.0.113.1", 443)]
    conftest.NETWORK_ATTEMPTS.clear()
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.connect(server.getsockname())
    assert conftest.NETWORK_ATTEMPTS == []


def hostile_config_json(kind: str) -> str:
    """A malformed or hostile config.json of one `kind`, else the classifier's own."""
    config = json.loads((classifier_checkpoint() / "config.json").read_text(encoding="utf-8"))
    depth = 100_000
    return {
        "truncated": json.dumps(config)[:20],
        "not-an-object": "[1, 2, 3]",
        "vocab-size-is-a-string": json.dumps({**config, "vocab_size": "30522"}),
        "negative-hidden-size": json.dumps({**config, "hidden_size": -8}),
        "ten-billion-entry-vocabulary": json.dumps({**config, "vocab_size": 10**10}),
        "million-layers": json.dumps({**config, "num_hidden_layers": 10**6}),
        "embedding-far-larger-than-the-weights": json.dumps(
            {**config, "vocab_size": 2**24, "hidden_size": 2**12, "num_attention_heads": 64}
        ),
        "oversized-file": json.dumps(config) + " " * (16 * 2**20),
        "nested-past-python-limit": '{"a": ' + "[" * depth + "]" * depth + "}",
    }[kind]


HOSTILE_CONFIG_KINDS = [
    "truncated",
    "not-an-object",
    "vocab-size-is-a-string",
    "negative-hidden-size",
    "ten-billion-entry-vocabulary",
    "million-layers",
    "embedding-far-larger-than-the-weights",
    "oversized-file",
    "nested-past-python-limit",
]


@pytest.mark.parametrize("kind", HOSTILE_CONFIG_KINDS)
def test_hostile_config_json_is_refused_before_anything_is_allocated(tmp_path, kind):
    """A ModelLoadError naming config.json, raised before transformers builds the model."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(classifier_checkpoint(), folder)
    (folder / "config.json").write_text(hostile_config_json(kind), encoding="utf-8")
    tracemalloc.start()
    try:
        with pytest.raises(ModelLoadError, match=r"config\.json") as error:
            tfpipe.pipeline("text-classification", model=str(folder))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(str(error.value)) < 1000
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB allocated to refuse the file"


def test_the_unmodified_config_loads(tmp_path):
    """The control for the hostile configs: the same copy, config untouched, loads."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(classifier_checkpoint(), folder)
    model = tfpipe.pipeline("text-classification", model=str(folder))
    assert model(tf.constant(["fine"]))["probabilities"].shape[0] == 1
