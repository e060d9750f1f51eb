"""Columns to model inputs: check a mapping against a signature, and turn a chunk into input tensors.

By default an input takes the column of the same name; a dataset of one column feeds a model of one input.
Each row of a column holds one input row: a number (or string for BYTES), or a list for a vector input
(a JSON list in JSON Lines, or a JSON list text such as ``[1, 2, 3]`` in a CSV cell).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from flashml.datatypes import BY_V2
from flashml.errors import BadRequestError
from flashml.jobs.formats import Chunk
from flashml.signature import Signature, TensorSpec


class MappingError(BadRequestError):
    code = "mapping_mismatch"


def resolve_mapping(signature: Signature, columns: list[dict[str, Any]], mapping: dict[str, str] | None
                    ) -> dict[str, str]:
    """{input: column} for every model input, checked; a 400 that names what does not fit."""
    names = [c["name"] for c in columns]
    by_name = {c["name"]: c for c in columns}
    mapping = dict(mapping or {})
    inputs = [t.name for t in signature.inputs]
    unknown = sorted(set(mapping) - set(inputs))
    if unknown:
        raise MappingError(f"The mapping names {', '.join(map(repr, unknown))}, which the model has no input of; its "
                           f"inputs are {', '.join(map(repr, inputs))}.", details={"inputs": inputs, "columns": names})
    for spec in signature.inputs:
        if spec.name in mapping:
            continue
        if spec.name in by_name:
            mapping[spec.name] = spec.name
        elif len(inputs) == 1 and len(names) == 1:
            mapping[spec.name] = names[0]
    missing = [i for i in inputs if i not in mapping]
    if missing:
        raise MappingError(f"No column feeds input(s) {', '.join(map(repr, missing))}: name the columns after the "
                           f"inputs or send a mapping {{input: column}}. The dataset's columns are "
                           f"{', '.join(map(repr, names))}.", details={"inputs": inputs, "columns": names,
                                                                        "missing": missing})
    for spec in signature.inputs:
        col = mapping[spec.name]
        if col not in by_name:
            raise MappingError(f"Input {spec.name!r} is mapped to column {col!r}, which the dataset does not have; its "
                               f"columns are {', '.join(map(repr, names))}.", details={"columns": names})
        if spec.shape and spec.shape[0] != -1:
            raise MappingError(f"Input {spec.name!r} has a fixed first dimension {spec.shape[0]}: batch jobs need "
                               "models whose first dimension is the batch (dynamic).", code="model_not_batchable")
        shape = by_name[col].get("shape")
        if shape is not None and not _fits(shape[1:], spec.shape[1:]):
            raise MappingError(f"Column {col!r} holds rows of shape {shape[1:]}; input {spec.name!r} takes rows of "
                               f"shape {_row_shape(spec)}.", details={"column": col, "input": spec.name})
        dtype = by_name[col].get("dtype")
        if dtype is not None and spec.datatype != "BYTES" and np.dtype(dtype).kind not in "biuf":
            raise MappingError(f"Column {col!r} holds {by_name[col].get('type', dtype)}; input {spec.name!r} takes "
                               f"{spec.datatype} numbers.",
                               details={"column": col, "input": spec.name})
    return mapping


def _fits(have: list[int], want: list[int]) -> bool:
    return len(have) == len(want) and all(w == -1 or h == w for h, w in zip(have, want, strict=True))


def _row_shape(spec: TensorSpec) -> str:
    return "[" + ", ".join("any" if d == -1 else str(d) for d in spec.shape[1:]) + "]"


def to_inputs(chunk: Chunk, signature: Signature, mapping: dict[str, str]
              ) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple[int, str]]]:
    """(input tensors of the good rows, their row ids, bad rows as (row, why))."""
    bad = dict(chunk.bad)
    if all(isinstance(chunk.columns.get(mapping[s.name]), np.ndarray) for s in signature.inputs):
        # npy, npz, Parquet numbers: whole arrays, their shapes were checked with the mapping
        inputs = {s.name: np.ascontiguousarray(chunk.columns[mapping[s.name]], dtype=BY_V2[s.datatype].numpy)
                  for s in signature.inputs}
        return inputs, np.arange(chunk.start, chunk.start + chunk.rows, dtype=np.int64), []
    values: dict[str, list[np.ndarray]] = {s.name: [] for s in signature.inputs}
    good = []
    for i in range(chunk.rows):
        row = chunk.start + i
        if row in bad:
            continue
        converted = {}
        for spec in signature.inputs:
            col = mapping[spec.name]
            try:
                converted[spec.name] = _value(chunk.columns.get(col, [None] * chunk.rows)[i], spec)
            except ValueError as exc:
                bad[row] = f"row {row}, column {col!r} (input {spec.name!r}): {exc}"
                break
        else:
            good.append(row)
            for name, v in converted.items():
                values[name].append(v)
    inputs = {s.name: (np.stack(values[s.name]) if values[s.name]
                       else np.empty((0, *[max(d, 0) for d in s.shape[1:]]), BY_V2[s.datatype].numpy))
              for s in signature.inputs}
    return inputs, np.asarray(good, dtype=np.int64), sorted(bad.items())


def _value(raw: Any, spec: TensorSpec) -> np.ndarray:
    if raw is None or isinstance(raw, str) and raw == "":
        raise ValueError("the value is missing")
    dtype = BY_V2[spec.datatype].numpy
    if isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise ValueError(f"{raw[:40]!r} is not a JSON list") from None
    try:
        arr = np.array(raw, dtype=object if spec.datatype == "BYTES" else dtype)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{str(raw)[:40]!r} is not {spec.datatype}") from None
    want = spec.shape[1:]
    if not _fits(list(arr.shape), want):
        raise ValueError(f"a row of shape {list(arr.shape)}, the input takes {_row_shape(spec)}")
    return arr
