"""Talking to TF Serving about an exported tfpipe model: REST bodies, gRPC requests, parsing.

Inputs are the export's ``text`` (and ``text_pair``) string vectors; outputs come back as a
dict of numpy arrays (strings decoded), whichever transport and JSON form was used.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
REST_FORMS = ("instances", "inputs")


def text_inputs(texts: Sequence[str], text_pairs: Sequence[str] | None) -> dict[str, list[str]]:
    """``{"text": [...], "text_pair": [...]}``, checked to be non-empty and aligned."""
    texts = [str(text) for text in texts]
    if not texts:
        raise ValueError("at least one text is needed")
    inputs = {"text": texts}
    if text_pairs is not None:
        pairs = [str(text) for text in text_pairs]
        if len(pairs) != len(texts):
            raise ValueError(f"got {len(pairs)} text_pairs for {len(texts)} texts")
        inputs["text_pair"] = pairs
    return inputs


def rest_predict_url(
    model_name: str, *, host: str = "localhost", port: int = 8501, version: int | None = None
) -> str:
    """``http://HOST:PORT/v1/models/NAME[/versions/N]:predict``."""
    version_part = "" if version is None else f"/versions/{int(version)}"
    return f"http://{host}:{port}/v1/models/{model_name}{version_part}:predict"


def rest_request_body(
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    form: str = "instances",
    signature_name: str = DEFAULT_SIGNATURE,
) -> dict[str, Any]:
    """A TF Serving REST predict body in row (``instances``) or columnar (``inputs``) form."""
    inputs = text_inputs(texts, text_pairs)
    if form == "instances":
        rows = [
            dict(zip(inputs, values, strict=True)) for values in zip(*inputs.values(), strict=True)
        ]
        return {"signature_name": signature_name, "instances": rows}
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": inputs}
    raise ValueError(f"form must be one of {', '.join(REST_FORMS)}, got {form!r}")


def parse_rest_response(
    response: str | bytes | dict[str, Any], output_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """A REST predict response (either form) as ``{output name: array}``.

    TF Serving drops the output names when a signature has a single output; pass
    ``output_names`` to name it (default ``"output"``).
    """
    body = json.loads(response) if isinstance(response, str | bytes) else response
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict):
            columns = {name: [row[name] for row in rows] for name in rows[0]}
        else:
            columns = {_single_output_name(output_names): rows}
    elif "outputs" in body:
        outputs = body["outputs"]
        columns = (
            outputs if isinstance(outputs, dict) else {_single_output_name(output_names): outputs}
        )
    else:
        raise ValueError("not a TF Serving predict response: no 'predictions' or 'outputs'")
    return {name: np.asarray(values) for name, values in columns.items()}


def _single_output_name(output_names: Sequence[str] | None) -> str:
    if output_names is None:
        return "output"
    if len(output_names) != 1:
        raise ValueError(f"an unnamed response has one output, not {list(output_names)}")
    return output_names[0]


def grpc_predict_request(
    model_name: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    signature_name: str = DEFAULT_SIGNATURE,
    version: int | None = None,
):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` for the export."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in text_inputs(texts, text_pairs).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    return request


def parse_predict_response(response) -> dict[str, np.ndarray]:
    """A gRPC ``PredictResponse`` as ``{output name: array}``, strings decoded."""
    import tensorflow as tf

    return {name: _decoded(tf.make_ndarray(tensor)) for name, tensor in response.outputs.items()}


def _decoded(array: np.ndarray) -> np.ndarray:
    if array.dtype == object:
        return np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(array)
    return array


def rest_predict(
    url: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    form: str = "instances",
    timeout: float = 30.0,
) -> dict[str, np.ndarray]:
    """POST a predict request to a running model server's REST API."""
    body = json.dumps(rest_request_body(texts, text_pairs, form=form)).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return parse_rest_response(response.read())


def grpc_predict(
    target: str,
    model_name: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
) -> dict[str, np.ndarray]:
    """Call ``PredictionService/Predict`` on a running model server (``target``: host:port)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = grpc_predict_request(model_name, texts, text_pairs)
        return parse_predict_response(stub.Predict(request, timeout=timeout))
