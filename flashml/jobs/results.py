"""Job results: one file per finished chunk, then one file for the whole job, each row with its row id.

Formats: ``csv`` (a header, ``row_id`` then one column per output; vector outputs as JSON lists),
``jsonl`` (``{"row_id": n, "<output>": value}`` per line), ``npy`` (a structured array: a ``row_id`` field and
one field per output, a subarray field for a vector output, one record per row), ``npz`` (the array ``row_id``
and one array per output) and ``parquet`` (a ``row_id`` column and one column per output, list columns for
vectors; each chunk becomes a row group). The job's file is assembled chunk by chunk, never all in memory.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

OUTPUT_FORMATS = ("csv", "jsonl", "npy", "npz", "parquet")
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "npy": "application/octet-stream",
               "npz": "application/octet-stream", "parquet": "application/vnd.apache.parquet"}
BINARY_OUTPUTS = ("npy", "npz")  # formats that cannot hold BYTES (string) outputs without pickling
ANSWER_FORMATS = ("csv", "jsonl")  # formats for answers of image task models (a JSON value per row)
ANSWER_COLUMN = "prediction"


class ResultError(ValueError):
    """The chunks cannot be joined into one file (an output's shape changed between chunks)."""


def _plain(value: np.ndarray) -> object:
    out = value.tolist()
    return out.decode() if isinstance(out, bytes) else out


def write_chunk(fmt: str, path: Path, row_ids: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    """Write one chunk's results (blocking)."""
    names = list(outputs)
    if fmt == "npz":
        with open(path, "wb") as fh:
            _write_npz(fh, [("row_id", row_ids), *outputs.items()])
        return
    if fmt == "npy":
        records = np.empty(len(row_ids), dtype=[("row_id", "<i8"), *[(n, a.dtype, a.shape[1:])
                                                                      for n, a in outputs.items()]])
        records["row_id"] = row_ids
        for n, a in outputs.items():
            if len(row_ids):
                records[n] = a
        with open(path, "wb") as fh:
            np.save(fh, records, allow_pickle=False)
        return
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"row_id": pa.array(row_ids, pa.int64()), **{n: _arrow(outputs[n]) for n in names}})
        pq.write_table(table, path)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if fmt == "csv":
            writer = csv.writer(fh)
            writer.writerow(["row_id", *names])
            for i, row in enumerate(row_ids.tolist()):
                cells = [_plain(outputs[n][i]) for n in names]
                writer.writerow([row, *[json.dumps(c) if isinstance(c, list) else c for c in cells]])
        else:
            for i, row in enumerate(row_ids.tolist()):
                fh.write(json.dumps({"row_id": row, **{n: _plain(outputs[n][i]) for n in names}}) + "\n")


def write_answers(fmt: str, path: Path, row_ids: list[str], answers: list[object], column: str) -> None:
    """Write one chunk of answers keyed by name (images of a zip): JSON Lines, or CSV with a JSON column."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if fmt == "csv":
            writer = csv.writer(fh)
            writer.writerow(["row_id", column])
            writer.writerows([row, json.dumps(answer)] for row, answer in zip(row_ids, answers, strict=True))
        else:
            for row, answer in zip(row_ids, answers, strict=True):
                fh.write(json.dumps({"row_id": row, column: answer}) + "\n")


def _arrow(values: np.ndarray):  # noqa: ANN202 - a pyarrow array; pyarrow is imported lazily
    """An Arrow column of one output: plain values for a scalar per row, nested list columns for vectors."""
    import pyarrow as pa

    if values.ndim <= 1:
        return pa.array(values.tolist() if values.dtype == object else values)
    n, k = values.shape[0], values.shape[1]
    inner = _arrow(values.reshape(n * k, *values.shape[2:]))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), inner)


def assemble(fmt: str, parts: list[Path], dest: Path) -> None:
    """Join the chunk files, in order, into the job's result file (blocking)."""
    if fmt == "npz":
        merged: dict[str, list[np.ndarray]] = {}
        for part in parts:
            with np.load(part, allow_pickle=False) as npz:
                for k in npz.files:
                    merged.setdefault(k, []).append(npz[k])
        with open(dest, "wb") as fh:
            _write_npz(fh, ((k, np.concatenate(v)) for k, v in merged.items()))
        return
    if fmt == "npy":
        _assemble_npy(parts, dest)
        return
    if fmt == "parquet":
        _assemble_parquet(parts, dest)
        return
    with open(dest, "wb") as out:
        for n, part in enumerate(parts):
            with open(part, "rb") as fh:
                if fmt == "csv" and n > 0:
                    fh.readline()  # every chunk has the header; the result keeps the first
                shutil.copyfileobj(fh, out)


def _write_npz(fh: BinaryIO, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """What np.savez writes (an uncompressed zip of one .npy per array), for any output name: np.savez takes the
    arrays as keywords, so an output named ``file`` broke the job and one named ``allow_pickle`` was left out."""
    seen: set[str] = set()
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays:
            if name in seen:  # an output named row_id: refused, as np.savez refused it
                raise ValueError(f"two arrays are named {name!r}")
            seen.add(name)
            with zf.open(f"{name}.npy", mode="w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)


def _npy_header(fh) -> tuple[int, np.dtype]:  # noqa: ANN001
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read(fh)
    return shape[0], dtype


def _assemble_npy(parts: list[Path], dest: Path) -> None:
    """One header for every record, then each chunk's records copied after it: one chunk in memory at most."""
    heads = []
    for part in parts:
        with open(part, "rb") as fh:
            heads.append(_npy_header(fh))
    full = [(p, n, d) for p, (n, d) in zip(parts, heads, strict=True) if n]  # empty chunks: every row was bad
    dtype = full[0][2] if full else (heads[0][1] if heads else np.dtype([("row_id", "<i8")]))
    for _p, _n, d in full:
        if d != dtype:
            raise ResultError(f"An output's shape changed between chunks ({d} after {dtype}): an .npy result needs "
                              "the same shape for every row; choose jsonl or parquet.")
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (sum(n for _p, n, _d in full),)}
    with open(dest, "wb") as out:
        try:
            np.lib.format.write_array_header_1_0(out, header)
        except ValueError:  # a header over 64 KiB (very many outputs)
            out.seek(0)
            out.truncate()
            np.lib.format.write_array_header_2_0(out, header)
        for part, _n, _d in full:
            with open(part, "rb") as fh:
                _npy_header(fh)
                shutil.copyfileobj(fh, out)


def _assemble_parquet(parts: list[Path], dest: Path) -> None:
    """Each chunk's table becomes the next row group(s) of one file: one chunk in memory at most."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for part in parts:
            table = pq.read_table(part)
            if table.num_rows == 0 and (writer is not None or part is not parts[-1]):
                continue  # every row of the chunk was bad; its empty columns may not have the outputs' types
            if writer is None:
                writer = pq.ParquetWriter(dest, table.schema)
            elif table.schema != writer.schema:
                try:
                    table = table.cast(writer.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                    raise ResultError(f"An output's type changed between chunks: {exc}") from None
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no parts at all: an empty dataset
        pq.write_table(pa.table({"row_id": pa.array([], pa.int64())}), dest)
