"""REST and gRPC helpers, exercised against the exported serving_default signature."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from model_fixtures import SENTENCES, exported_classifier, work_dir
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from tfpipe.export.tf_serving import BATCHING_PARAMETERS_FILE, write_models_config
from tfpipe.serving import (
    ServingError,
    grpc_predict,
    grpc_predict_request,
    parse_predict_response,
    parse_rest_response,
    rest_predict,
    rest_predict_url,
    rest_request_body,
    signature_output_names,
)


@functools.cache
def serving_default():
    return tf.saved_model.load(str(exported_classifier().path)).signatures["serving_default"]


def direct_outputs() -> dict[str, np.ndarray]:
    outputs = serving_default()(text=tf.constant(SENTENCES))
    return {name: value.numpy() for name, value in outputs.items()}


def as_json(array: np.ndarray):
    if array.dtype == object:
        return [value.decode("utf-8") for value in array.tolist()]
    return array.tolist()


def serve_rest(body: dict, signature=None) -> dict:
    """TF Serving's documented JSON mapping: rows or columns in, the same form out; a single
    output loses its name ("the name is omitted")."""
    if "instances" in body:
        rows = body["instances"]
        inputs = {name: [row[name] for row in rows] for name in rows[0]}
    else:
        inputs = body["inputs"]
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    assert body["signature_name"] == "serving_default"
    outputs = (signature or serving_default())(**tensors)
    columns = {name: as_json(value.numpy()) for name, value in outputs.items()}
    if len(columns) == 1:
        (column,) = columns.values()
        return {"predictions" if "instances" in body else "outputs": column}
    if "instances" in body:
        count = len(body["instances"])
        return {"predictions": [{name: columns[name][i] for name in columns} for i in range(count)]}
    return {"outputs": columns}


def assert_same_outputs(parsed: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(parsed) == set(expected)
    for name, value in expected.items():
        if value.dtype == object:
            assert parsed[name].tolist() == as_json(value)
        else:
            np.testing.assert_allclose(parsed[name], value, atol=1e-6)


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_bodies_round_trip_through_the_exported_signature(form):
    body = rest_request_body(SENTENCES, form=form)
    assert body["signature_name"] == "serving_default"
    assert_same_outputs(parse_rest_response(serve_rest(body)), direct_outputs())


def test_row_form_has_one_instance_per_text_with_named_inputs():
    body = rest_request_body(["a", "b"], ["c", "d"])
    assert body["instances"] == [{"text": "a", "text_pair": "c"}, {"text": "b", "text_pair": "d"}]


def test_unnamed_single_output_responses_get_the_given_name():
    parsed = parse_rest_response({"predictions": [[0.1, 0.9]]}, output_names=["probabilities"])
    np.testing.assert_allclose(parsed["probabilities"], [[0.1, 0.9]])


def test_rest_errors_are_raised():
    with pytest.raises(RuntimeError, match="TF Serving error: bad input"):
        parse_rest_response('{"error": "bad input"}')


def test_misaligned_pairs_are_refused():
    with pytest.raises(ValueError, match="2 text_pairs for 1 texts"):
        rest_request_body(["a"], ["b", "c"])


def test_rest_url_names_model_and_version():
    assert rest_predict_url("sentiment") == "http://localhost:8501/v1/models/sentiment:predict"
    assert rest_predict_url("s", host="h", port=1, version=3) == (
        "http://h:1/v1/models/s/versions/3:predict"
    )


Route = Callable[[dict | None], tuple[int, dict | str]]


@contextlib.contextmanager
def fake_model_server(routes: dict[str, Route]):
    """A REST server on 127.0.0.1 answering each path of ``routes`` (handler: the request's
    JSON or None -> status and JSON, or raw text); other paths get TF Serving's 404 body.
    Yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length)) if length else None
            route = routes.get(self.path, lambda _: (404, {"error": f"Not found: {self.path}"}))
            status, body = route(request)
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def metadata_response(saved_model_dir: Path, name: str) -> dict:
    """GET /v1/models/NAME/metadata as TF Serving answers it: the SavedModel's SignatureDefMap
    in JSON with proto field names."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (saved_model_dir / "saved_model.pb").read_bytes()
    )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in saved_model.meta_graphs[0].signature_def.items():
        signatures.signature_def[key].CopyFrom(signature)
    signature_map = json_format.MessageToDict(signatures, preserving_proto_field_name=True)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": "1"},
        "metadata": {"signature_def": signature_map},
    }


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, "Servable not found for request: Latest(sentiment)"),
        (400, "JSON object: does not have named input: text"),
    ],
)
def test_rest_predict_raises_the_servers_error_text(status, error):
    predict = "/v1/models/sentiment:predict"
    with (
        fake_model_server({predict: lambda _: (status, {"error": error})}) as base,
        pytest.raises(ServingError) as raised,
    ):
        rest_predict(base + predict, ["a text"])
    assert str(raised.value) == f"TF Serving error (HTTP {status} from {base + predict}): {error}"


def test_rest_predict_shows_a_non_json_error_body():
    predict = "/v1/models/sentiment:predict"
    with (
        fake_model_server({predict: lambda _: (502, "upstream model server is down")}) as base,
        pytest.raises(ServingError, match="HTTP 502 .*: upstream model server is down$"),
    ):
        rest_predict(base + predict, ["a text"])


@functools.cache
def single_output_model() -> Path:
    """A SavedModel whose serving_default has one output, ``embedding``, as a
    feature-extraction export has."""

    def embed(text: tf.Tensor) -> dict[str, tf.Tensor]:
        length = tf.cast(tf.strings.length(text), tf.float32)
        return {"embedding": tf.stack([length, tf.sqrt(length)], axis=1)}

    path = work_dir() / "single-output" / "1"
    signature = tf.function(embed, input_signature=[tf.TensorSpec([None], tf.string, "text")])
    tf.saved_model.save(tf.Module(), str(path), signatures={"serving_default": signature})
    return path


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_predict_names_a_single_output_from_the_model_metadata(form):
    served = tf.saved_model.load(str(single_output_model())).signatures["serving_default"]
    routes = {
        "/v1/models/embedder:predict": lambda body: (200, serve_rest(body, served)),
        "/v1/models/embedder/metadata": lambda _: (
            200,
            metadata_response(single_output_model(), "embedder"),
        ),
    }
    with fake_model_server(routes) as base:
        outputs = rest_predict(base + "/v1/models/embedder:predict", SENTENCES, form=form)
    expected = served(text=tf.constant(SENTENCES))["embedding"].numpy()
    assert list(outputs) == ["embedding"]
    np.testing.assert_allclose(outputs["embedding"], expected)


def test_rest_predict_uses_given_output_names_without_asking_the_server():
    served = tf.saved_model.load(str(single_output_model())).signatures["serving_default"]
    routes = {"/v1/models/embedder:predict": lambda body: (200, serve_rest(body, served))}
    with fake_model_server(routes) as base:  # no metadata route: asking would be a 404
        outputs = rest_predict(
            base + "/v1/models/embedder:predict", SENTENCES, output_names=["vector"]
        )
    assert list(outputs) == ["vector"]


def test_model_metadata_lists_the_exported_signatures_outputs():
    metadata = metadata_response(exported_classifier().path, "classifier")
    assert signature_output_names(json.dumps(metadata)) == ["label", "probabilities", "score"]
    assert signature_output_names(metadata, "tokenize") == [
        "attention_mask",
        "input_ids",
        "token_type_ids",
    ]


def test_grpc_request_round_trips_through_the_exported_signature():
    request = grpc_predict_request("classifier", SENTENCES, version=1)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert (request.model_spec.name, request.model_spec.version.value) == ("classifier", 1)
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    outputs = serving_default()(**{name: tf.constant(value) for name, value in inputs.items()})
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    assert_same_outputs(parse_predict_response(response), direct_outputs())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    shutil.which("tensorflow_model_server") is None,
    reason="tensorflow_model_server is not on PATH",
)
def test_live_model_server_answers_rest_and_grpc():
    base = exported_classifier().path.parents[1]
    config = write_models_config(base, None)
    rest_port, grpc_port = free_port(), free_port()
    log = (work_dir() / "model_server.log").open("w")
    server = subprocess.Popen(
        ["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
         f"--model_config_file={config}", "--enable_batching",
         f"--batching_parameters_file={base / BATCHING_PARAMETERS_FILE}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        status_url = f"http://localhost:{rest_port}/v1/models/classifier"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(status_url, timeout=2) as response:
                    if b'"AVAILABLE"' in response.read():
                        break
            except OSError:
                time.sleep(1)
        url = rest_predict_url("classifier", port=rest_port)
        for form in ("instances", "inputs"):
            assert_same_outputs(rest_predict(url, SENTENCES, form=form), direct_outputs())
        served = grpc_predict(f"localhost:{grpc_port}", "classifier", SENTENCES)
        assert_same_outputs(served, direct_outputs())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        write_models_config(base, "/models")
