"""Talking to TF Serving about an exported tfpipe model: REST bodies, gRPC requests, parsing.

Inputs are the export's string vectors: ``text`` (and ``text_pair``) by default, or the names
given as ``input_names`` (``("question", "context")`` for question answering); outputs come
back as a dict of numpy arrays (strings decoded) keyed by the signature's output names,
whichever transport and JSON form was used.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
REST_FORMS = ("instances", "inputs")
PREDICT_SUFFIX = ":predict"
ERROR_BODY_CHARS = 500
TEXT_INPUT_NAMES = ("text", "text_pair")


class ServingError(RuntimeError):
    """The model server answered with an error; the message is the server's own text."""


def text_inputs(
    texts: Sequence[str],
    text_pairs: Sequence[str] | None,
    input_names: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """``{first input: texts, second input: text_pairs}``, checked to be non-empty and
    aligned; the inputs are ``input_names``, by default ``text`` and ``text_pair``."""
    names = tuple(input_names or TEXT_INPUT_NAMES)
    if len(names) not in (1, 2):
        raise ValueError(f"input_names are one or two names, not {list(names)}")
    texts = [str(text) for text in texts]
    if not texts:
        raise ValueError("at least one text is needed")
    inputs = {names[0]: texts}
    if text_pairs is None:
        if input_names is not None and len(names) == 2:
            raise ValueError(f"the inputs are {names[0]} and {names[1]}: pass both")
        return inputs
    if len(names) == 1:
        raise ValueError(f"the only input is {names[0]}: pass no second texts")
    pairs = [str(text) for text in text_pairs]
    if len(pairs) != len(texts):
        raise ValueError(f"got {len(pairs)} {names[1]}s for {len(texts)} {names[0]}s")
    inputs[names[1]] = pairs
    return inputs


def rest_predict_url(
    model_name: str, *, host: str = "localhost", port: int = 8501, version: int | None = None
) -> str:
    """``http://HOST:PORT/v1/models/NAME[/versions/N]:predict``."""
    version_part = "" if version is None else f"/versions/{int(version)}"
    return f"http://{host}:{port}/v1/models/{model_name}{version_part}:predict"


def rest_metadata_url(predict_url: str) -> str:
    """The model metadata endpoint (``.../v1/models/NAME[/versions/N]/metadata``) of a
    predict URL."""
    if not predict_url.endswith(PREDICT_SUFFIX):
        raise ValueError(
            f"{predict_url} does not end in {PREDICT_SUFFIX}: pass output_names to name a "
            "single-output response"
        )
    return predict_url[: -len(PREDICT_SUFFIX)] + "/metadata"


def rest_request_body(
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    form: str = "instances",
    signature_name: str = DEFAULT_SIGNATURE,
    input_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A TF Serving REST predict body in row (``instances``) or columnar (``inputs``) form."""
    inputs = text_inputs(texts, text_pairs, input_names)
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
    ``output_names`` to name it (default ``"output"``; ``rest_predict`` asks the server).
    """
    body = json.loads(response) if isinstance(response, str | bytes) else response
    if "error" in body:
        raise ServingError(f"TF Serving error: {body['error']}")
    if "predictions" not in body and "outputs" not in body:
        raise ValueError("not a TF Serving predict response: no 'predictions' or 'outputs'")
    values = body["predictions"] if "predictions" in body else body["outputs"]
    if is_unnamed(body):
        columns = {_single_output_name(output_names): values}
    elif "predictions" in body:
        columns = {name: [row[name] for row in values] for name in values[0]}
    else:
        columns = values
    return {name: np.asarray(column) for name, column in columns.items()}


def is_unnamed(body: dict[str, Any]) -> bool:
    """Whether a predict response left its (single) output unnamed, as TF Serving does."""
    if "predictions" in body:
        rows = body["predictions"]
        return not (rows and isinstance(rows[0], dict))
    return "outputs" in body and not isinstance(body["outputs"], dict)


def _single_output_name(output_names: Sequence[str] | None) -> str:
    if output_names is None:
        return "output"
    if len(output_names) != 1:
        raise ValueError(f"an unnamed response has one output, not {list(output_names)}")
    return output_names[0]


def signature_output_names(
    metadata: str | bytes | dict[str, Any], signature_name: str = DEFAULT_SIGNATURE
) -> list[str]:
    """A signature's output names from a REST model metadata response
    (``GET /v1/models/NAME/metadata``: ``metadata.signature_def.signature_def``)."""
    body = json.loads(metadata) if isinstance(metadata, str | bytes) else metadata
    if "error" in body:
        raise ServingError(f"TF Serving error: {body['error']}")
    signature_map = body.get("metadata", {}).get("signature_def", {})
    # TF Serving writes proto field names; camelCase JSON (OpenVINO's server) signatureDef.
    signatures = signature_map.get("signature_def", signature_map.get("signatureDef", {}))
    if signature_name not in signatures:
        raise ValueError(
            f"the model metadata has no signature {signature_name!r}, only {sorted(signatures)}"
        )
    return sorted(signatures[signature_name].get("outputs", {}))


def grpc_predict_request(
    model_name: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    signature_name: str = DEFAULT_SIGNATURE,
    version: int | None = None,
    input_names: Sequence[str] | None = None,
):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` for the export."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in text_inputs(texts, text_pairs, input_names).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    return request


def parse_predict_response(response) -> dict[str, np.ndarray]:
    """A gRPC ``PredictResponse`` as ``{output name: array}``, strings decoded (gRPC names
    every output, a single one too)."""
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
    output_names: Sequence[str] | None = None,
    input_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """POST a predict request to a running model server's REST API.

    A single-output signature's response is unnamed; its name is ``output_names`` if given,
    else asked of the model's metadata endpoint (one more request, only for such models).
    Raises ServingError with the server's message when it answers with an error.
    """
    body = rest_request_body(texts, text_pairs, form=form, input_names=input_names)
    body = json.dumps(body).encode("utf-8")
    response = _http_json(url, body, timeout)
    if output_names is None and "error" not in response and is_unnamed(response):
        metadata = _http_json(rest_metadata_url(url), None, timeout)
        output_names = signature_output_names(metadata)
    return parse_rest_response(response, output_names)


def _http_json(url: str, body: bytes | None, timeout: float) -> dict[str, Any]:
    """GET (or POST ``body``) ``url`` and decode its JSON; an HTTP error status becomes a
    ServingError carrying the server's ``{"error": ...}`` text."""
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        message = _error_text(error)
        raise ServingError(f"TF Serving error (HTTP {error.code} from {url}): {message}") from None


def _error_text(error: urllib.error.HTTPError) -> str:
    """The ``error`` field of TF Serving's JSON error body, else the body's start."""
    text = error.read().decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return text[:ERROR_BODY_CHARS] or str(error.reason)


def grpc_predict(
    target: str,
    model_name: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
    input_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Call ``PredictionService/Predict`` on a running model server (``target``: host:port)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = grpc_predict_request(model_name, texts, text_pairs, input_names=input_names)
        return parse_predict_response(stub.Predict(request, timeout=timeout))
