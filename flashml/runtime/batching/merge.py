"""Stack requests into one batch along axis 0 (padding token axes) and cut the outputs back per request."""

from __future__ import annotations

import numpy as np

from flashml.errors import TensorError
from flashml.runtime.batching.config import BatchingConfig, request_length
from flashml.runtime.runner import ModelRuntimeError


def rows(inputs: dict[str, np.ndarray]) -> int:
    """The batch size of one request: axis 0, which every input must share."""
    if not inputs:
        raise TensorError("A batched model needs at least one input tensor.", code="batch_mismatch")
    sizes: dict[str, int] = {}
    for name, array in inputs.items():
        if array.ndim == 0:
            raise TensorError(f"Input {name} is a scalar, so it has no batch axis 0.", code="batch_mismatch",
                              details={"tensor": name})
        sizes[name] = int(array.shape[0])
    distinct = set(sizes.values())
    if len(distinct) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise TensorError(f"All inputs must have the same batch size on axis 0, but {listed}.",
                          code="batch_mismatch", details={"batch_sizes": sizes})
    return distinct.pop()


def merge_key(inputs: dict[str, np.ndarray], config: BatchingConfig) -> tuple:
    """What must match for two requests to share a batch: names, dtypes and shape[1:] except padded axes.

    A request's padded inputs must agree on their length (token ids and their mask): padding would hide a
    mismatch that the model refuses when the request runs alone, and outputs are cut back to one length.
    """
    key = []
    lengths: dict[str, int] | None = None  # only padded models pay for the check
    for name in sorted(inputs):
        array = inputs[name]
        shape = list(array.shape[1:])
        spec = config.padded_inputs.get(name)
        if spec is not None:
            if array.ndim <= spec.axis:
                raise TensorError(f"Input {name} has {array.ndim} dimensions, so it cannot be padded on axis "
                                  f"{spec.axis}.", code="batch_mismatch", details={"tensor": name})
            shape[spec.axis - 1] = -1
            lengths = lengths if lengths is not None else {}
            lengths[name] = int(array.shape[spec.axis])
        key.append((name, array.dtype.str, tuple(shape)))
    if lengths is not None and len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise TensorError(f"The padded inputs of one request must have the same length, but {listed}.",
                          code="batch_mismatch", details={"lengths": lengths})
    return tuple(key)


def _index(ndim: int, axis: int, part: slice) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


def _stack_padded(arrays: list[np.ndarray], axis: int, value: float | int) -> np.ndarray:
    # One allocation filled with the pad value, then each request copied in: cheaper than np.pad + concatenate.
    longest = max(a.shape[axis] for a in arrays)
    shape = list(arrays[0].shape)
    shape[0] = sum(a.shape[0] for a in arrays)
    shape[axis] = longest
    out = np.full(shape, value, dtype=arrays[0].dtype)
    offset = 0
    for a in arrays:
        index = list(_index(a.ndim, axis, slice(0, a.shape[axis])))
        index[0] = slice(offset, offset + a.shape[0])
        out[tuple(index)] = a
        offset += a.shape[0]
    return out


def merge(requests_inputs: list[dict[str, np.ndarray]], config: BatchingConfig
          ) -> tuple[dict[str, np.ndarray], list[int], list[int | None]]:
    """Concatenate same-key requests on axis 0; return the batch, each request's rows and its padded length."""
    lengths = [request_length(inputs, config) for inputs in requests_inputs]
    if len(requests_inputs) == 1:
        only = requests_inputs[0]
        return only, [rows(only) if config.max_batch_size else 1], lengths
    row_counts = [rows(inputs) for inputs in requests_inputs]
    merged: dict[str, np.ndarray] = {}
    for name in requests_inputs[0]:
        arrays = [inputs[name] for inputs in requests_inputs]
        spec = config.padded_inputs.get(name)
        if spec is not None and len({a.shape[spec.axis] for a in arrays}) > 1:
            merged[name] = _stack_padded(arrays, spec.axis, spec.value)
        else:
            merged[name] = np.concatenate(arrays, axis=0)
    return merged, row_counts, lengths


def split(outputs: dict[str, np.ndarray], row_counts: list[int], lengths: list[int | None],
          config: BatchingConfig) -> list[dict[str, np.ndarray]]:
    """Slice each output back per request on axis 0, cutting padded outputs to the request's own length."""
    if len(row_counts) == 1:
        return [outputs]  # nothing was stacked or padded beyond this request, so nothing to cut
    total = sum(row_counts)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            raise ModelRuntimeError(f"output {name} does not have the batch on axis 0 "
                                    f"(shape {list(array.shape)}, batch of {total} rows)")
        axis = config.padded_outputs.get(name)
        if axis is not None and array.ndim <= axis:
            raise ModelRuntimeError(f"output {name} has {array.ndim} dimensions, so it cannot be cut on axis {axis}")
    parts: list[dict[str, np.ndarray]] = []
    offset = 0
    for n, length in zip(row_counts, lengths, strict=True):
        part: dict[str, np.ndarray] = {}
        for name, array in outputs.items():
            piece = array[offset:offset + n]
            axis = config.padded_outputs.get(name)
            if axis is not None and length is not None and piece.shape[axis] > length:
                # A contiguous copy: the serializer should not keep the whole padded batch alive.
                piece = np.ascontiguousarray(piece[_index(piece.ndim, axis, slice(0, length))])
            part[name] = piece
        parts.append(part)
        offset += n
    return parts
