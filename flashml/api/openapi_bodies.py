"""OpenAPI request bodies for handlers that read the raw body themselves (streams, V2 binary)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

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
                     "application/octet-stream": MediaType(schema=Schema(type=OpenAPIType.STRING, format="binary"))})


@dataclass
class UploadOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The model as the raw request body: one .onnx file, or a .tar.gz or .zip bundle holding "
                        "model.onnx, its external-data files and an optional flashml.toml. Streamed to disk.",
            content={"application/octet-stream": MediaType(schema=Schema(type=OpenAPIType.STRING,
                                                                         format="binary"))})
