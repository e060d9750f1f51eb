"""Parquet datasets, with pyarrow: columns (numbers, strings, lists for vector inputs) read a row group at a time.

A column of numbers without nulls, or a fixed-size list of them, comes out as one numpy array per chunk; any
other column (nulls, lists of varying length, strings) as a list of Python values, checked row by row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flashml.errors import BadRequestError


def _error(name: str, exc: Exception) -> BadRequestError:
    return BadRequestError(f"{name!r} cannot be read as Parquet: {exc}", code="bad_dataset")


def _leaf(t: pa.DataType) -> tuple[list[int] | None, pa.DataType]:
    """(row shape, or None when a list's length varies; the values' type) of a column type."""
    shape: list[int] | None = []
    while pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        if pa.types.is_fixed_size_list(t) and shape is not None:
            shape.append(t.list_size)
        else:
            shape = None
        t = t.value_type
    return shape, t


def _dtype(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return str(np.dtype(t.to_pandas_dtype()))
    return "str" if pa.types.is_string(t) or pa.types.is_large_string(t) else "object"


def inspect(path: Path, name: str) -> tuple[int, list[dict[str, Any]]]:
    """(row count, columns) from the file's footer, without reading its rows."""
    try:
        pf = pq.ParquetFile(path)
        schema, rows = pf.schema_arrow, pf.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _error(name, exc) from None
    if not len(schema):
        raise BadRequestError(f"{name!r} has no columns.", code="bad_dataset")
    columns = []
    for field in schema:
        shape, leaf = _leaf(field.type)
        column: dict[str, Any] = {"name": field.name, "type": str(field.type), "dtype": _dtype(leaf)}
        if shape is not None:
            column["shape"] = [-1, *shape]
        columns.append(column)
    return rows, columns


def _values(col: pa.ChunkedArray) -> np.ndarray | list[Any]:
    values = col.combine_chunks()
    if values.null_count == 0:
        dims = []
        while pa.types.is_fixed_size_list(values.type):
            dims.append(values.type.list_size)
            values = values.flatten()
        if values.null_count == 0 and _dtype(values.type) not in ("str", "object"):
            return values.to_numpy(zero_copy_only=False).reshape(-1, *dims)
    return col.to_pylist()


def read(path: Path, chunk_rows: int, start: int, name: str = "dataset") -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(first row, rows, {column: values}) for each chunk from row ``start``, starting at its row group."""
    try:
        pf = pq.ParquetFile(path)
        offset, first = 0, pf.num_row_groups
        for i in range(pf.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if offset + n > start:
                first = i
                break
            offset += n
        if first == pf.num_row_groups:
            return
        skip, pos = start - offset, start
        buffered: list[pa.RecordBatch] = []
        held = 0
        batches = pf.iter_batches(batch_size=chunk_rows, row_groups=range(first, pf.num_row_groups))
        for batch in batches:
            if skip:
                cut = min(skip, batch.num_rows)
                batch, skip = batch.slice(cut), skip - cut
            buffered.append(batch)
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(buffered)
                part, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
                yield pos, chunk_rows, {c: _values(part.column(c)) for c in part.column_names}
                pos += chunk_rows
                buffered, held = rest.to_batches(), rest.num_rows
        if held:
            table = pa.Table.from_batches(buffered)
            yield pos, held, {c: _values(table.column(c)) for c in table.column_names}
    except (pa.ArrowException, OSError) as exc:
        raise _error(name, exc) from None
