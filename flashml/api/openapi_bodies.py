"""OpenAPI request bodies: typed JSON bodies from their records (``document_bodies``), and by hand only for the
handlers that read the raw body themselves (streamed uploads, V2 inference with binary tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

from flashml.records import Body
from flashml.web.bodies import BODY_DEPENDENCY, body_kind

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


def document_bodies(doc: dict[str, Any], routes: list[Any]) -> None:
    """Give each operation whose handler takes a typed JSON body (``web.bodies.json_body``) that body's schema,
    generated from the record by msgspec, with the records it nests in ``components.schemas``."""
    operations: list[tuple[dict[str, Any], type[Body]]] = []
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            provider = handler.resolve_dependencies().get(BODY_DEPENDENCY)
            kind = body_kind(provider) if provider is not None else None
            if kind is None:
                continue
            for method in handler.http_methods:
                operation = doc.get("paths", {}).get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operations.append((operation, kind))
    kinds = sorted({kind for _, kind in operations}, key=lambda k: k.__name__)
    refs, components = msgspec.json.schema_components(kinds, ref_template="#/components/schemas/{name}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"two OpenAPI schemas named {name}: rename the request body record")
        schemas[name] = schema
    by_kind = dict(zip(kinds, refs, strict=True))
    for operation, kind in operations:
        operation["requestBody"] = {"required": True, "description": (kind.__doc__ or "").strip(),
                                    "content": {"application/json": {"schema": by_kind[kind]}}}
