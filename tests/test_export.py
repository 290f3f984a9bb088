"""tfpipe.export: the TF Serving layout, its signatures, and the self-check that guards it."""

from __future__ import annotations

import ast
import configparser
import functools
import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from model_fixtures import (
    CLASSIFIER_LABELS,
    SENTENCES,
    classifier_pipeline,
    exported_classifier,
    work_dir,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tfpipe.export import ExportError, export, runtime_compat
from tfpipe.export.graph_audit import constant_bytes, foreign_ops, graph_op_types
from tfpipe.export.saved_model import WARMUP_FILE, find_tokenizer
from tfpipe.export.tf_serving import (
    BATCHING_PARAMETERS_FILE,
    write_batching_parameters,
    write_models_config,
)


def test_export_writes_a_numbered_version_with_metadata():
    exported = exported_classifier()
    assert exported.path.name == "1" and (exported.path / "saved_model.pb").is_file()
    metadata = json.loads((exported.path / "tfpipe.json").read_text())
    assert metadata["task"] == "text-classification"
    assert metadata["labels"] == list(CLASSIFIER_LABELS.values())
    assert metadata["max_length"] == find_tokenizer(classifier_pipeline()).max_length
    assert metadata["inputs"] == ["text"]
    assert metadata["outputs"] == ["label", "probabilities", "score"]
    assert metadata["tensorflow_version"] == tf.__version__
    assert metadata["minimum_tensorflow_version"] == runtime_compat.MINIMUM_TENSORFLOW
    assert not [path for path in exported.path.parent.iterdir() if path.name.startswith(".")]


def test_models_config_points_tf_serving_at_the_model():
    exported = exported_classifier()
    config = (exported.path.parents[1] / "models.config").read_text()
    assert exported.models_config == exported.path.parents[1] / "models.config"
    assert 'name: "classifier"' in config
    assert 'base_path: "/models/classifier"' in config
    assert 'model_platform: "tensorflow"' in config


def test_models_config_covers_every_exported_model(tmp_path):
    source = exported_classifier().path
    for name in ("sentiment", "topics"):
        shutil.copytree(source, tmp_path / name / "3")
    (tmp_path / "not_a_model").mkdir()
    config = write_models_config(tmp_path, None).read_text()
    assert config.count("config {") == 2
    assert f'base_path: "{tmp_path / "sentiment"}"' in config
    assert "not_a_model" not in config


def batching_parameters_class() -> type:
    """TF Serving's BatchingParameters message (session_bundle_config.proto), the fields it
    numbers 1-4; tensorflow-serving-api does not ship that proto."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="batching.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    names = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
    for number, name in enumerate(names, start=1):
        message.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            type_name=".google.protobuf.Int64Value",
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    return message_factory.GetMessageClass(descriptor)


def test_batching_parameters_parse_as_tf_servings_message():
    from google.protobuf import text_format

    exported = exported_classifier()
    assert exported.batching_parameters == exported.path.parents[1] / BATCHING_PARAMETERS_FILE
    text = exported.batching_parameters.read_text()
    parameters = text_format.Parse(text, batching_parameters_class()())
    assert parameters.max_batch_size.value == 32
    assert 0 < parameters.batch_timeout_micros.value <= 10_000
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= parameters.num_batch_threads.value


def test_batching_parameters_an_operator_edited_are_kept(tmp_path):
    path = tmp_path / BATCHING_PARAMETERS_FILE
    path.write_text("max_batch_size { value: 8 }\n")
    assert write_batching_parameters(tmp_path) == path
    assert path.read_text() == "max_batch_size { value: 8 }\n"


def test_warmup_requests_are_predict_logs_for_serving_default():
    exported = exported_classifier()
    records = list(tf.data.TFRecordDataset(str(exported.path / WARMUP_FILE)).as_numpy_iterator())
    assert records
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.name == "classifier"
        assert request.model_spec.signature_name == "serving_default"
        texts = tf.make_ndarray(request.inputs["text"])
        assert texts.dtype == object and texts.ndim == 1


@functools.cache
def loaded_classifier():
    return tf.saved_model.load(str(exported_classifier().path))


def test_serving_default_matches_the_in_memory_model():
    loaded = loaded_classifier()
    served = loaded.signatures["serving_default"](text=tf.constant(SENTENCES))
    expected = classifier_pipeline()({"text": tf.constant(SENTENCES)})
    np.testing.assert_allclose(
        served["probabilities"].numpy(), expected["probabilities"].numpy(), atol=1e-5
    )
    assert served["label"].numpy().tolist() == expected["label"].numpy().tolist()
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["text"]
    assert (spec.dtype, spec.shape.as_list()) == (tf.string, [None])


def test_tokenize_signature_returns_the_tokenizer_ids():
    served = loaded_classifier().signatures["tokenize"](text=tf.constant(SENTENCES))
    expected = find_tokenizer(classifier_pipeline())(tf.constant(SENTENCES))
    assert set(served) == set(expected)
    for name, ids in expected.items():
        np.testing.assert_array_equal(served[name].numpy(), ids.numpy())


def test_exported_graph_uses_only_core_ops():
    exported = exported_classifier()
    saved_model = saved_model_pb2.SavedModel.FromString(
        (exported.path / "saved_model.pb").read_bytes()
    )
    op_types = graph_op_types(saved_model.meta_graphs[0].graph_def)
    assert op_types and not foreign_ops(op_types)
    assert set(exported.op_types) == op_types


def test_exported_graph_constants_stay_small():
    """The tokenizer's tables are graph constants that a serving process copies dozens of
    times while it loads and first runs the graph (docs/serving.md, Memory): MiniLM's
    BertNormalizer tables once took 27 MB (a 1.9 GB server), now about 3 MB."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (exported_classifier().path / "saved_model.pb").read_bytes()
    )
    assert constant_bytes(saved_model.meta_graphs[0].graph_def) < 6_000_000


def python_callback_model():
    """The classifier's tokenizer followed by a py_function: unservable by design."""
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    ids = find_tokenizer(classifier_pipeline())(text)["input_ids"]
    lengths = tf_keras.layers.Lambda(
        lambda batch: tf.py_function(lambda x: tf.reduce_sum(x, axis=1), [batch], tf.int32)
    )(ids)
    return tf_keras.Model({"text": text}, {"lengths": lengths})


def test_export_fails_on_python_callbacks_and_publishes_nothing():
    target = work_dir() / "saved_models" / "callback" / "1"
    with pytest.raises(ExportError, match="ops stock TF Serving cannot run: EagerPyFunc"):
        export(python_callback_model(), target)
    assert not target.exists()
    assert not list(target.parent.iterdir())


def test_export_refuses_to_overwrite_a_version():
    with pytest.raises(ExportError, match="exists; pass overwrite=True"):
        export(classifier_pipeline(), exported_classifier().path)


@pytest.mark.parametrize("path", ["saved_models/model/latest", "saved_models/model/0", "1"])
def test_export_path_must_end_in_name_and_version(path, tmp_path):
    with pytest.raises(ExportError, match="NAME/VERSION|model name"):
        export(classifier_pipeline(), tmp_path / path if path != "1" else "/1")


def test_export_needs_string_text_inputs():
    number = tf_keras.Input(shape=(3,), name="text")
    model = tf_keras.Model({"text": number}, {"out": tf_keras.layers.Dense(1)(number)})
    with pytest.raises(ExportError, match="must be tf.string"):
        export(model, work_dir() / "saved_models" / "numbers" / "1")


REPO = Path(__file__).resolve().parents[1]


def install_requires(extra: str | None = None) -> list[Requirement]:
    """setup.cfg's install_requires: what ``pip install tfpipe`` installs; with ``extra``,
    that extra's requirements too (``pip install tfpipe[extra]``)."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines()
    if extra is not None:
        lines += config["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in map(str.strip, lines) if line and line[0] != "#"]


def installed_with(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements install, theirs included (as installed here)."""
    names: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        marker = requirement.marker
        if name in names or (marker is not None and not marker.evaluate({"extra": ""})):
            continue
        names.add(name)
        pending += [Requirement(line) for line in importlib.metadata.requires(name) or []]
    return names


def file_imports(path: Path) -> set[str]:
    """Top-level modules one file imports (at any depth), outside the standard library."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"tfpipe", "__future__"}


def imported_modules(package: Path, exclude: tuple[Path, ...] = ()) -> set[str]:
    """Top-level modules the package's code (less the ``exclude`` files and folders)
    imports, outside the standard library."""
    return set().union(*(file_imports(path) for path in package.rglob("*.py")
                         if not any(path.is_relative_to(skip) for skip in exclude)))


def not_installed(modules: set[str], installed: set[str]) -> dict[str, list[str] | None]:
    providers = importlib.metadata.packages_distributions()
    return {
        module: providers.get(module)
        for module in modules
        if not {canonicalize_name(name) for name in providers.get(module, [])} & installed
    }


# The code only an extra installs for: tfpipe.keras (Keras 3); tfpipe.beam and the
# batch-predict command, which imports Beam when it runs.
EXTRA_CODE = {"keras": ("keras",), "beam": ("beam", "batch_predict.py")}


def extra_paths(extra: str) -> tuple[Path, ...]:
    return tuple(REPO / "tfpipe" / name for name in EXTRA_CODE[extra])


def test_pip_install_tfpipe_alone_provides_every_module_it_imports():
    """Export writes warmup PredictionLogs with tensorflow_serving's protos: no extra needed.
    The extras' code is checked below."""
    extras = tuple(path for extra in EXTRA_CODE for path in extra_paths(extra))
    modules = imported_modules(REPO / "tfpipe", exclude=extras)
    missing = not_installed(modules, installed_with(install_requires()))
    assert not missing, f"imported by tfpipe, not installed by its install_requires: {missing}"


@pytest.mark.parametrize("extra", list(EXTRA_CODE))
def test_each_extra_provides_every_module_its_code_imports(extra):
    modules = set().union(*(imported_modules(path) if path.is_dir() else file_imports(path)
                            for path in extra_paths(extra)))
    missing = not_installed(modules, installed_with(install_requires(extra)))
    assert not missing, f"imported by its code, not installed by tfpipe[{extra}]: {missing}"
