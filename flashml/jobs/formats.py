"""Dataset files: CSV, JSON Lines, NumPy .npy and .npz, Parquet. Inspect one at upload; read it in chunks of rows.

A chunk is ``Chunk(start, rows, columns, bad)``: ``columns`` maps a column name to a list of raw values (CSV,
JSON Lines, Parquet columns with nulls or lists of varying length) or a numpy array (npy, npz, Parquet number
columns and fixed-size lists); ``bad`` lists rows that could not even be read (a JSON line that is not an
object, a CSV line with the wrong number of fields), by row number. Row numbers count data rows from 0 (a CSV
header is not a row). Parquet is read a row group at a time. Zips of images: see ``imagezip``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from flashml.errors import BadRequestError
from flashml.jobs import imagezip, parquet

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".npz": "npz", ".parquet": "parquet",
           ".zip": "images"}
csv.field_size_limit(64 * 1024 * 1024)


class DatasetError(BadRequestError):
    code = "bad_dataset"


@dataclass
class Chunk:
    start: int
    rows: int
    columns: dict[str, Any]
    bad: list[tuple[int, str]] = field(default_factory=list)


def detect_format(filename: str) -> str:
    """The dataset format from the file name's extension, or a 400 naming the ones read."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise BadRequestError(f"{filename!r} is not a dataset FlashML reads: send .csv, .jsonl (or .ndjson), .npy, "
                              ".npz, .parquet or .zip (of images).", code="unsupported_format")
    return FORMATS[suffix]


def inspect(path: Path, fmt: str, name: str, zip_limits: imagezip.ZipLimits | None = None
            ) -> tuple[int, list[dict[str, Any]]]:
    """(row count, columns) of a dataset file; a 400 when it cannot be read at all."""
    if fmt == "images":
        return imagezip.inspect(path, name, zip_limits or imagezip.ZipLimits())
    try:
        if fmt == "csv":
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if not header or any(not h.strip() for h in header):
                    raise DatasetError("A CSV dataset needs a header line naming every column.")
                return sum(1 for _ in reader), [{"name": h.strip()} for h in header]
        if fmt == "jsonl":
            rows, names = 0, {}
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    if rows < 100:
                        try:
                            obj = json.loads(line)
                        except (ValueError, RecursionError):
                            obj = None
                        if isinstance(obj, dict):
                            names.update(dict.fromkeys(obj))
                    rows += 1
            if not names:
                raise DatasetError("A JSON Lines dataset needs one JSON object per line (the first 100 held none).")
            return rows, [{"name": n} for n in names]
        if fmt == "parquet":
            return parquet.inspect(path, name)
        arrays = _arrays(path, fmt, name)
        counts = {len(a) for a in arrays.values()}
        if len(counts) != 1:
            raise DatasetError("Every array of an .npz dataset must have the same number of rows (first dimension).")
        return counts.pop(), [{"name": k, "shape": [-1, *a.shape[1:]], "dtype": str(a.dtype)}
                              for k, a in arrays.items()]
    except UnicodeDecodeError:
        raise DatasetError(f"{name!r} is not UTF-8 text.") from None
    except (ValueError, OSError, zipfile.BadZipFile, csv.Error) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{name!r} cannot be read as {fmt}: {exc}") from None


def _arrays(path: Path, fmt: str, name: str) -> dict[str, np.ndarray]:
    """The arrays of an .npy (one column, named after the file) or .npz file, memory-mapped where possible."""
    if fmt == "npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim == 0:
            raise DatasetError("An .npy dataset needs at least one dimension (the rows).")
        return {Path(name).stem: arr}
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if not arrays or any(a.ndim == 0 for a in arrays.values()):
        raise DatasetError("An .npz dataset needs at least one array, each with a first dimension (the rows).")
    return arrays


def read_chunks(path: Path, fmt: str, name: str, chunk_rows: int, first_chunk: int) -> Iterator[Chunk]:
    """The dataset's chunks from ``first_chunk`` on (blocking: drive it from a thread)."""
    start = first_chunk * chunk_rows
    if fmt == "parquet":
        for s, rows, columns in parquet.read(path, chunk_rows, start, name):
            yield Chunk(s, rows, columns)
        return
    if fmt in ("npy", "npz"):
        arrays = _arrays(path, fmt, name)
        total = len(next(iter(arrays.values())))
        for s in range(start, total, chunk_rows):
            e = min(total, s + chunk_rows)
            yield Chunk(s, e - s, {k: np.asarray(a[s:e]) for k, a in arrays.items()})
        return
    with open(path, newline="" if fmt == "csv" else None, encoding="utf-8") as fh:
        records = islice(_csv_rows(fh) if fmt == "csv" else _jsonl_rows(fh), start, None)
        n = start
        while True:
            batch = list(islice(records, chunk_rows))
            if not batch:
                return
            yield _columns(n, batch)
            n += len(batch)


def _csv_rows(fh: io.TextIOBase) -> Iterator[dict[str, Any] | str]:
    reader = csv.reader(fh)
    header = [h.strip() for h in next(reader)]
    for fields in reader:
        if len(fields) != len(header):
            yield f"has {len(fields)} fields; the header names {len(header)}"
        else:
            yield dict(zip(header, fields, strict=True))


def _jsonl_rows(fh: io.TextIOBase) -> Iterator[dict[str, Any] | str]:
    for line in fh:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield f"is not JSON ({exc})"
            continue
        except RecursionError:
            yield "is JSON nested too deeply"
            continue
        yield obj if isinstance(obj, dict) else "is not a JSON object"


def _columns(start: int, batch: list[dict[str, Any] | str]) -> Chunk:
    columns: dict[str, list[Any]] = {}
    bad = []
    for i, row in enumerate(batch):
        if isinstance(row, str):
            bad.append((start + i, f"row {start + i} {row}"))
            row = {}
        for k, v in row.items():
            columns.setdefault(k, [None] * len(batch))[i] = v
    return Chunk(start, len(batch), columns, bad)
