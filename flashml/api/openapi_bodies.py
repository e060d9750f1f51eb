"""OpenAPI request bodies for handlers that read the raw body themselves (streams, V2 binary)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from flashml.errors import BadRequestError

V2_INFER_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["inputs"],
    properties={
        "id": Schema(type=OpenAPIType.STRING),
        "parameters": Schema(type=OpenAPIType.OBJECT, description="binary_data_output: answer outputs in binary"),
        "inputs": Schema(type=OpenAPIType.ARRAY, items=Schema(
            type=OpenAPIType.OBJECT, required=["name", "shape", "datatype"],
            properties={"name": Schema(type=OpenAPIType.STRING),
                        "shape": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.INTEGER)),
                        "datatype": Schema(type=OpenAPIType.STRING, enum=[
                            "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                            "FP16", "FP32", "FP64", "BF16", "BYTES"]),
                        "parameters": Schema(type=OpenAPIType.OBJECT, description="binary_data_size"),
                        "data": Schema(type=OpenAPIType.ARRAY, items=Schema(), description="flat or nested")})),
        "outputs": Schema(type=OpenAPIType.ARRAY, items=Schema(
            type=OpenAPIType.OBJECT, required=["name"],
            properties={"name": Schema(type=OpenAPIType.STRING),
                        "parameters": Schema(type=OpenAPIType.OBJECT, description="binary_data: bool")})),
    },
)


@dataclass
class V2InferOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A KServe V2 inference request. With Triton's binary tensor extension, the header "
                        "'Inference-Header-Content-Length' gives the length of the JSON part and binary tensors "
                        "follow it.",
            content={"application/json": MediaType(schema=V2_INFER_SCHEMA),
                     "application/octet-stream": MediaType(schema=Schema(type=OpenAPIType.STRING,
                                                                         format=OpenAPIFormat.BINARY))})


@dataclass
class UploadOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The model as the raw request body: one .onnx file, or a .tar.gz or .zip bundle holding "
                        "model.onnx, its external-data files and an optional flashml.toml. Streamed to disk.",
            content={"application/octet-stream": MediaType(schema=Schema(type=OpenAPIType.STRING,
                                                                         format=OpenAPIFormat.BINARY))})


_INT = Schema(type=OpenAPIType.INTEGER)
CONFIG_PATCH_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="Any of these fields; the others keep their values. device, instance_count and batch_buckets "
                "reload the version's sessions (requests in flight finish first); the rest apply at once.",
    properties={
        "device": Schema(type=OpenAPIType.STRING, description="cpu, auto, cuda or cuda:N; null: the server's"),
        "instance_count": _INT,
        "max_batch_size": Schema(type=OpenAPIType.INTEGER, description="rows per batch; 0 = never batch"),
        "max_queue_delay_us": _INT,
        "preferred_batch_sizes": Schema(type=OpenAPIType.ARRAY, items=_INT),
        "batch_buckets": Schema(type=OpenAPIType.ARRAY, items=_INT,
                                description="fixed batch sizes, the largest max_batch_size: a session per size"),
        "max_queue_size": _INT,
        "default_timeout_us": _INT,
        "padded_inputs": Schema(type=OpenAPIType.OBJECT, description='{"input_ids": {"axis": 1, "value": 0}}'),
        "padded_outputs": Schema(type=OpenAPIType.OBJECT, description='{"logits": 1}'),
    },
)


@dataclass
class ConfigPatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={"application/json": MediaType(
            schema=CONFIG_PATCH_SCHEMA)})


UPLOAD_START_SCHEMA = Schema(
    type=OpenAPIType.OBJECT, required=["model", "filename", "size"],
    properties={"model": Schema(type=OpenAPIType.STRING), "filename": Schema(type=OpenAPIType.STRING),
                "size": Schema(type=OpenAPIType.INTEGER, description="bytes"),
                "sha256": Schema(type=OpenAPIType.STRING, description="64 hex digits; checked at complete")},
)


@dataclass
class UploadStartOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={"application/json": MediaType(
            schema=UPLOAD_START_SCHEMA)})


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}.", code="malformed_request") from None
    except RecursionError:
        raise BadRequestError("The body's JSON is nested too deeply.", code="malformed_request") from None
    if not isinstance(data, dict):
        raise BadRequestError("The body must be a JSON object.", code="malformed_request")
    return data


ALIAS_PUT_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description='One of: {"version": 3}, or a split {"versions": {"3": 95, "4": 5}} whose weights (whole '
                "percent, 1 to 100) sum to 100. Every version must be ready.",
    properties={
        "version": Schema(type=OpenAPIType.INTEGER, description="the version the alias points at"),
        "versions": Schema(type=OpenAPIType.OBJECT, description="version number -> weight in percent",
                           additional_properties=_INT),
        "guard": Schema(type=OpenAPIType.OBJECT, description="a split only: roll the canary back to the stable "
                        "(heaviest) version when it crosses max_error_rate (0-1) or max_p99_ms over window_s "
                        "seconds (default 60), once it answered min_requests (default 20)", properties={
                            "max_error_rate": Schema(type=OpenAPIType.NUMBER),
                            "max_p99_ms": Schema(type=OpenAPIType.NUMBER),
                            "window_s": Schema(type=OpenAPIType.NUMBER),
                            "min_requests": Schema(type=OpenAPIType.INTEGER)}),
        "shadow": Schema(type=OpenAPIType.OBJECT, description="also run this share (percent) of the requests on "
                         "a candidate version in the background and compare the answers", properties={
                             "version": Schema(type=OpenAPIType.INTEGER),
                             "percent": Schema(type=OpenAPIType.NUMBER)}),
    },
)


@dataclass
class AliasPutOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={"application/json": MediaType(
            schema=ALIAS_PUT_SCHEMA)})
