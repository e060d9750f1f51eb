"""Feed and read tensors that ONNX Runtime's numpy bridge cannot carry (bfloat16)."""

from __future__ import annotations

import ctypes

import ml_dtypes
import numpy as np
import onnxruntime as ort
from onnx import TensorProto

BF16 = np.dtype(ml_dtypes.bfloat16)


def _bf16_from_ortvalue(value: ort.OrtValue) -> np.ndarray:
    shape = value.shape()
    n = int(np.prod(shape)) if shape else 1
    raw = (ctypes.c_uint16 * n).from_address(value.data_ptr())  # CPU memory owned by the OrtValue
    return np.frombuffer(memoryview(raw), dtype=np.uint16).copy().view(BF16).reshape(shape)


def run_with_bf16(session: ort.InferenceSession, inputs: dict[str, np.ndarray],
                  output_names: list[str]) -> list[np.ndarray]:
    """``session.run`` for models with bfloat16 inputs or outputs, through OrtValues."""
    feeds = {}
    for name, arr in inputs.items():
        if arr.dtype == BF16:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                np.ascontiguousarray(arr).view(np.uint16), TensorProto.BFLOAT16)
        else:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr))
    values = session.run_with_ort_values(output_names, feeds)
    return [_bf16_from_ortvalue(v) if v.data_type() == "tensor(bfloat16)" else v.numpy() for v in values]


def needs_ortvalues(session: ort.InferenceSession) -> bool:
    """True when some input or output is bfloat16 (``session.run`` cannot carry it)."""
    return any(t.type == "tensor(bfloat16)" for t in [*session.get_inputs(), *session.get_outputs()])
