"""The one table that maps KServe V2 datatypes, numpy dtypes and ONNX element types."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
from onnx import TensorProto


@dataclass(frozen=True)
class DataType:
    v2: str  # KServe V2 / Triton name, e.g. "FP32"
    numpy: np.dtype
    onnx: int  # onnx.TensorProto element type
    ort: str  # ONNX Runtime type string, e.g. "tensor(float)"

    @property
    def itemsize(self) -> int:
        """Bytes per element in the binary tensor extension; 0 for BYTES (length-prefixed)."""
        return 0 if self.v2 == "BYTES" else self.numpy.itemsize


_TABLE = [
    DataType("BOOL", np.dtype(np.bool_), TensorProto.BOOL, "tensor(bool)"),
    DataType("UINT8", np.dtype(np.uint8), TensorProto.UINT8, "tensor(uint8)"),
    DataType("UINT16", np.dtype(np.uint16), TensorProto.UINT16, "tensor(uint16)"),
    DataType("UINT32", np.dtype(np.uint32), TensorProto.UINT32, "tensor(uint32)"),
    DataType("UINT64", np.dtype(np.uint64), TensorProto.UINT64, "tensor(uint64)"),
    DataType("INT8", np.dtype(np.int8), TensorProto.INT8, "tensor(int8)"),
    DataType("INT16", np.dtype(np.int16), TensorProto.INT16, "tensor(int16)"),
    DataType("INT32", np.dtype(np.int32), TensorProto.INT32, "tensor(int32)"),
    DataType("INT64", np.dtype(np.int64), TensorProto.INT64, "tensor(int64)"),
    DataType("FP16", np.dtype(np.float16), TensorProto.FLOAT16, "tensor(float16)"),
    DataType("FP32", np.dtype(np.float32), TensorProto.FLOAT, "tensor(float)"),
    DataType("FP64", np.dtype(np.float64), TensorProto.DOUBLE, "tensor(double)"),
    DataType("BF16", np.dtype(ml_dtypes.bfloat16), TensorProto.BFLOAT16, "tensor(bfloat16)"),
    DataType("BYTES", np.dtype(object), TensorProto.STRING, "tensor(string)"),
]

BY_V2 = {t.v2: t for t in _TABLE}
BY_ORT = {t.ort: t for t in _TABLE}
BY_ONNX = {t.onnx: t for t in _TABLE}
V2_NAMES = tuple(BY_V2)


def from_ort(ort_type: str) -> DataType | None:
    """The datatype for an ONNX Runtime type string, or None when V2 cannot carry it."""
    return BY_ORT.get(ort_type)
