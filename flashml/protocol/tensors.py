"""One tensor between the V2 wire forms (JSON lists, Triton binary) and numpy arrays."""

from __future__ import annotations

import math
import struct
from typing import Any

import msgspec
import numpy as np

from flashml.datatypes import BY_V2, DataType
from flashml.errors import TensorError

# numpy kinds a JSON list may turn into for each kind of target: ints may not silently become floats' truncations.
_ACCEPTED_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf", "V": "iuf"}


def element_count(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def from_json(name: str, dt: DataType, shape: list[int], data: Any) -> np.ndarray:
    """A JSON `data` member (flat or nested, row-major) as an array of the declared datatype and shape.

    ``data`` may also be the member's undecoded text (``msgspec.Raw``, for large bodies): numbers are then read
    a piece at a time, so that no single call holds the interpreter for long (see ``_numbers_from_text``)."""
    if isinstance(data, msgspec.Raw):
        if dt.v2 == "BYTES":
            # Every string has two quotes no backslash escapes: a count that refuses far too many strings
            # before any of them becomes an object (escaped backslashes only make the estimate smaller).
            text = bytes(data)
            if (text.count(b'"') - text.count(b'\\"')) // 2 > element_count(shape):
                raise TensorError(f"Input {name!r}: shape {shape} needs {element_count(shape)} elements, `data` "
                                  "has more.", code="tensor_element_count")
            return _bytes_from_json(name, shape, _decode(name, data))
        raw = _numbers_from_text(name, data)
        if dt.numpy.kind in "iu" and raw.dtype.kind in "fO":  # the exact slow path needs the values themselves
            return from_json(name, dt, shape, _decode(name, data))
        data = None
    else:
        if dt.v2 == "BYTES":
            return _bytes_from_json(name, shape, data)
        try:
            raw = np.asarray(data)
        except ValueError:
            raise TensorError(f"Input {name!r}: `data` is a ragged nested list.", code="tensor_shape") from None
    if raw.size != element_count(shape):
        raise TensorError(f"Input {name!r}: shape {shape} needs {element_count(shape)} elements, "
                          f"`data` has {raw.size}.", code="tensor_element_count")
    target = dt.numpy
    kind = target.kind if dt.v2 != "BF16" else "V"
    if kind in "iu" and raw.dtype.kind in "fO":
        raw = _big_integers(name, dt, data, raw)
    if raw.size and raw.dtype.kind not in _ACCEPTED_KINDS[kind]:
        raise TensorError(f"Input {name!r}: datatype {dt.v2} needs {_KIND_WORDS[kind]} in `data`, "
                          f"got {_describe(raw)}.", code="tensor_datatype")
    if kind in "iu" and raw.size:
        info = np.iinfo(target)
        if raw.min() < info.min or raw.max() > info.max:
            raise TensorError(f"Input {name!r}: a value is outside the range of {dt.v2} "
                              f"[{info.min}, {info.max}].", code="tensor_datatype")
    return raw.astype(target, copy=False).reshape(shape)


TEXT_PIECE_BYTES = 1 << 20


def _decode(name: str, text: msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        raise TensorError(f"Input {name!r}: `data` is not a JSON list of values.", code="malformed_request") from None


def _numbers_from_text(name: str, text: msgspec.Raw) -> np.ndarray:
    """The numbers of a JSON list (nested or flat) in row-major order, decoded about a MiB of text at a time.

    Brackets and blanks are dropped (the element count is checked against the shape afterwards), the rest is
    cut at commas; each piece is one short call, and between them other threads, the event loop's included,
    get the interpreter. One 60 MB list of numbers read in a single call held it for over two seconds."""
    raw = bytes(text)
    pieces, start = [], 0
    try:
        while start < len(raw):
            end = raw.find(b",", start + TEXT_PIECE_BYTES)
            end = len(raw) if end < 0 else end
            piece = raw[start:end].translate(None, b"[] \n\r\t")
            if piece:
                pieces.append(np.asarray(msgspec.json.decode(b"[" + piece + b"]")))
            start = end + 1
    except msgspec.DecodeError:
        raise TensorError(f"Input {name!r}: `data` must be a JSON list of numbers.", code="tensor_datatype") from None
    return np.concatenate(pieces) if pieces else np.asarray([])


def _big_integers(name: str, dt: DataType, data: Any, raw: np.ndarray) -> np.ndarray:
    """The slow path for integers numpy would not keep exact (beyond int64, e.g. large UINT64 values)."""
    values = np.array(data, dtype=object).reshape(-1)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.tolist()):
        raise TensorError(f"Input {name!r}: datatype {dt.v2} needs integers in `data`, got {_describe(raw)}.",
                          code="tensor_datatype")
    info = np.iinfo(dt.numpy)
    if any(v < info.min or v > info.max for v in values.tolist()):
        raise TensorError(f"Input {name!r}: a value is outside the range of {dt.v2} [{info.min}, {info.max}].",
                          code="tensor_datatype")
    return np.array(values.tolist(), dtype=dt.numpy)


_KIND_WORDS = {"b": "true/false values", "i": "integers", "u": "integers", "f": "numbers", "V": "numbers"}


def _describe(raw: np.ndarray) -> str:
    return {"b": "true/false values", "U": "strings", "O": "mixed values", "f": "non-integer numbers"}.get(
        raw.dtype.kind, str(raw.dtype))


def _bytes_from_json(name: str, shape: list[int], data: Any) -> np.ndarray:
    count = element_count(shape)
    flat: list[str] = []
    # A loop, not recursion, whatever the nesting; and it stops at one string more than the shape holds, so a
    # request's cost follows its declared shape (bounded by max_request_strings), not the size of its data.
    stack = [iter((data,))]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if not isinstance(item, str):
                raise TensorError(f"Input {name!r}: datatype BYTES needs strings in `data`, got "
                                  f"{type(item).__name__}.", code="tensor_datatype")
            flat.append(item)
            if len(flat) > count:
                raise TensorError(f"Input {name!r}: shape {shape} needs {count} elements, `data` has more.",
                                  code="tensor_element_count")
        else:
            stack.pop()
    if len(flat) != count:
        raise TensorError(f"Input {name!r}: shape {shape} needs {element_count(shape)} elements, "
                          f"`data` has {len(flat)}.", code="tensor_element_count")
    return np.array(flat, dtype=object).reshape(shape)


def from_binary(name: str, dt: DataType, shape: list[int], buf: memoryview) -> np.ndarray:
    """Triton's binary tensor form: raw little-endian elements, or for BYTES a 4-byte length before each."""
    count = element_count(shape)
    if dt.v2 == "BYTES":
        return _bytes_from_binary(name, shape, count, buf)
    if len(buf) != count * dt.itemsize:
        raise TensorError(f"Input {name!r}: shape {shape} of {dt.v2} needs {count * dt.itemsize} bytes, "
                          f"binary_data_size is {len(buf)}.", code="binary_size")
    arr = np.frombuffer(buf, dtype=dt.numpy.newbyteorder("<") if dt.numpy.itemsize > 1 else dt.numpy)
    if dt.v2 == "BOOL" and count and np.frombuffer(buf, dtype=np.uint8).max() > 1:
        raise TensorError(f"Input {name!r}: BOOL bytes must be 0 or 1.", code="tensor_datatype")
    return arr.astype(dt.numpy, copy=False).reshape(shape)


def _bytes_from_binary(name: str, shape: list[int], count: int, buf: memoryview) -> np.ndarray:
    items: list[str] = []
    offset, end = 0, len(buf)
    while offset < end:
        if len(items) == count:
            raise TensorError(f"Input {name!r}: shape {shape} needs {count} elements, the binary data holds more.",
                              code="tensor_element_count")
        if offset + 4 > end:
            raise TensorError(f"Input {name!r}: BYTES element {len(items)} has a cut-off length prefix.",
                              code="binary_size")
        (length,) = struct.unpack_from("<I", buf, offset)
        offset += 4
        if offset + length > end:
            raise TensorError(f"Input {name!r}: BYTES element {len(items)} claims {length} bytes past the end.",
                              code="binary_size")
        try:
            items.append(bytes(buf[offset:offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise TensorError(f"Input {name!r}: BYTES element {len(items)} is not UTF-8 text; ONNX strings are "
                              "text.", code="tensor_datatype") from None
        offset += length
    if len(items) != count:
        raise TensorError(f"Input {name!r}: shape {shape} needs {count} elements, the binary data holds "
                          f"{len(items)}.", code="tensor_element_count")
    return np.array(items, dtype=object).reshape(shape)


def to_json(dt: DataType, arr: np.ndarray) -> list[Any]:
    """A flat row-major JSON list of the array's elements."""
    flat = arr.reshape(-1)
    if dt.v2 == "BYTES":
        return [_text(x) for x in flat.tolist()]
    if dt.v2 in ("FP16", "BF16"):
        flat = flat.astype(np.float32)
    return flat.tolist()


def _text(x: Any) -> str:
    return x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)


def to_binary(dt: DataType, arr: np.ndarray) -> bytes:
    if dt.v2 == "BYTES":
        parts = []
        for x in arr.reshape(-1).tolist():
            b = x if isinstance(x, bytes) else str(x).encode("utf-8")
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=dt.numpy.newbyteorder("<") if dt.numpy.itemsize > 1 else dt.numpy
                                ).tobytes()


def datatype_of(name: str, datatype: Any) -> DataType:
    dt = BY_V2.get(datatype) if isinstance(datatype, str) else None
    if dt is None:
        raise TensorError(f"Tensor {name!r}: unknown datatype {datatype!r}; V2 datatypes are "
                          f"{', '.join(BY_V2)}.", code="tensor_datatype")
    return dt
