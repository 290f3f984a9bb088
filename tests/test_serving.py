"""REST and gRPC helpers, exercised against the exported serving_default signature."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from model_fixtures import SENTENCES, exported_classifier, work_dir
from tensorflow_serving.apis import predict_pb2

from tfpipe.export.tf_serving import BATCHING_PARAMETERS_FILE, write_models_config
from tfpipe.serving import (
    grpc_predict,
    grpc_predict_request,
    parse_predict_response,
    parse_rest_response,
    rest_predict,
    rest_predict_url,
    rest_request_body,
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


def serve_rest(body: dict) -> dict:
    """TF Serving's documented JSON mapping: rows or columns in, the same form out."""
    if "instances" in body:
        rows = body["instances"]
        inputs = {name: [row[name] for row in rows] for name in rows[0]}
    else:
        inputs = body["inputs"]
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    assert body["signature_name"] == "serving_default"
    outputs = {name: value.numpy() for name, value in serving_default()(**tensors).items()}
    columns = {name: as_json(value) for name, value in outputs.items()}
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
