"""Encode a V2 infer response: JSON tensors, or Triton's binary extension where the client asked for it."""

from __future__ import annotations

import msgspec
import numpy as np

from flashml.datatypes import BY_V2, DataType
from flashml.protocol.tensors import to_binary, to_json
from flashml.protocol.v2_request import InferRequest
from flashml.signature import Signature

HEADER_LENGTH = "Inference-Header-Content-Length"
_ENCODER = msgspec.json.Encoder()


def output_datatype(name: str, arr: np.ndarray, signature: Signature) -> DataType:
    spec = signature.output(name)
    if spec is not None:
        return BY_V2[spec.datatype]
    return next(dt for dt in BY_V2.values() if dt.numpy == arr.dtype)


def encode_infer_response(model: str, version: str, request_id: str | None, outputs: dict[str, np.ndarray],
                          request: InferRequest, signature: Signature) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (Inference-Header-Content-Length when binary data follows)."""
    entries = []
    blobs: list[bytes] = []
    for name, arr in outputs.items():
        dt = output_datatype(name, arr, signature)
        entry: dict[str, object] = {"name": name, "datatype": dt.v2, "shape": list(arr.shape)}
        if request.wants_binary(name):
            blob = to_binary(dt, arr)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = to_json(dt, arr)
        entries.append(entry)
    header: dict[str, object] = {"model_name": model, "model_version": version}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = entries
    head = _ENCODER.encode(header)
    if not blobs:
        return head, {}
    return b"".join([head, *blobs]), {HEADER_LENGTH: str(len(head))}
