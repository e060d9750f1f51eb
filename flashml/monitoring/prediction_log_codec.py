"""One logged prediction as one line of JSON, and back.

A line is ``{"at", "version", "request_id", "inputs", "input_summary", "outputs", "output_summary"}``; a tensor
is ``{"datatype": "FP32", "shape": [2, 4], "data": [[...], [...]]}`` (the KServe V2 datatype names, nested lists
as numpy's ``tolist`` makes them, so any JSON reader gets the rows back). JSON has no NaN or infinity: they are
written as null and read back as NaN. BYTES elements are written as text (UTF-8, undecodable bytes replaced).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from flashml.datatypes import BY_V2
from flashml.monitoring.prediction_log_records import LogConfig, LoggedPrediction

MAX_FEATURES = 1024  # wider tensors get no per-feature means: a summary stays small beside the tensor
_V2_OF = {t.numpy: t.v2 for t in BY_V2.values()}
_NUMERIC = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
                      "FP32", "FP64", "BF16"})
_encoder = msgspec.json.Encoder()


class Stamp(msgspec.Struct):
    """The one field a filter by time needs, decoded without building the rest of the line."""

    at: float


stamp_decoder = msgspec.json.Decoder(Stamp)
_line_decoder = msgspec.json.Decoder(dict[str, Any])


def datatype(array: np.ndarray) -> str:
    """The V2 name of an array's dtype (numpy's own name when V2 has none)."""
    if array.dtype.kind in "US":
        return "BYTES"
    return _V2_OF.get(array.dtype, array.dtype.str)


def _text(item: Any) -> str:
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def tensor_json(array: np.ndarray) -> dict[str, Any]:
    name = datatype(array)
    if name == "BYTES":
        data = np.array([_text(x) for x in array.ravel()], dtype=object).reshape(array.shape).tolist()
    elif name in ("FP16", "BF16"):
        data = array.astype(np.float32).tolist()
    else:
        data = array.tolist()
    return {"datatype": name, "shape": list(array.shape), "data": data}


def tensor_array(doc: dict[str, Any]) -> np.ndarray:
    kind = BY_V2.get(doc["datatype"])
    shape = tuple(doc["shape"])
    if kind is None:
        return np.array(doc["data"], dtype=np.dtype(doc["datatype"])).reshape(shape)
    if kind.v2 == "BYTES":
        flat = [x.encode() if isinstance(x, str) else x for x in np.array(doc["data"], dtype=object).ravel()]
        return np.array(flat, dtype=object).reshape(shape)
    if kind.v2 in ("FP16", "BF16"):
        return np.array(doc["data"], dtype=np.float32).reshape(shape).astype(kind.numpy)
    return np.array(doc["data"], dtype=kind.numpy).reshape(shape)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def summary(array: np.ndarray, *, top: bool = False) -> dict[str, Any]:
    """Shape and datatype; per-feature means of a numeric 1-D or 2-D tensor (a 1-D tensor is one feature);
    with ``top``, how many rows had their largest value in each column of a 2-D numeric tensor."""
    name = datatype(array)
    out: dict[str, Any] = {"datatype": name, "shape": list(array.shape)}
    if name not in _NUMERIC or array.ndim not in (1, 2) or array.shape[0] == 0:
        return out
    values = array.astype(np.float64).reshape(array.shape[0], -1)
    if values.shape[1] > MAX_FEATURES:
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        out["mean"] = [_finite(float(m)) for m in values.mean(axis=0)]
    if top and array.ndim == 2 and values.shape[1] > 1:
        out["top"] = np.bincount(np.argmax(values, axis=1), minlength=values.shape[1]).tolist()
    return out


def encode(at: float, version: int, request_id: str | None, inputs: dict[str, np.ndarray],
           outputs: dict[str, np.ndarray], config: LogConfig) -> bytes:
    """One prediction as one line, newline included, keeping what ``config`` says to keep."""
    doc = {"at": at, "version": version, "request_id": request_id,
           "inputs": {n: tensor_json(a) for n, a in inputs.items()} if config.keeps_inputs else None,
           "input_summary": {n: summary(a) for n, a in inputs.items()},
           "outputs": {n: tensor_json(a) for n, a in outputs.items()} if config.keeps_outputs else {},
           "output_summary": {n: summary(a, top=True) for n, a in outputs.items()}}
    return _encoder.encode(doc) + b"\n"


def decode(line: bytes) -> LoggedPrediction:
    """A line as written by ``encode``; a msgspec.DecodeError, KeyError or ValueError when it is not one."""
    doc = _line_decoder.decode(line)
    inputs = doc.get("inputs")
    return LoggedPrediction(
        at=float(doc["at"]), version=int(doc["version"]), request_id=doc.get("request_id"),
        inputs=None if inputs is None else {n: tensor_array(t) for n, t in inputs.items()},
        input_summary=doc.get("input_summary") or {},
        outputs={n: tensor_array(t) for n, t in (doc.get("outputs") or {}).items()},
        output_summary=doc.get("output_summary") or {})
