"""Job results: one file per finished chunk, then one file for the whole job, each row with its row id.

Formats: ``csv`` (a header, ``row_id`` then one column per output; vector outputs as JSON lists),
``jsonl`` (``{"row_id": n, "<output>": value}`` per line), ``npz`` (the array ``row_id`` and one array per
output; one ``.npy`` cannot hold the row ids and several outputs, so the NumPy result is an ``.npz``).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

OUTPUT_FORMATS = ("csv", "jsonl", "npz")
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "npz": "application/octet-stream"}


def _plain(value: np.ndarray) -> object:
    out = value.tolist()
    return out.decode() if isinstance(out, bytes) else out


def write_chunk(fmt: str, path: Path, row_ids: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    """Write one chunk's results (blocking)."""
    names = list(outputs)
    if fmt == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, row_id=row_ids, **outputs)
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


def assemble(fmt: str, parts: list[Path], dest: Path) -> None:
    """Join the chunk files, in order, into the job's result file (blocking)."""
    if fmt == "npz":
        merged: dict[str, list[np.ndarray]] = {}
        for part in parts:
            with np.load(part, allow_pickle=False) as npz:
                for k in npz.files:
                    merged.setdefault(k, []).append(npz[k])
        with open(dest, "wb") as fh:
            np.savez(fh, **{k: np.concatenate(v) for k, v in merged.items()})
        return
    with open(dest, "wb") as out:
        for n, part in enumerate(parts):
            with open(part, "rb") as fh:
                if fmt == "csv" and n > 0:
                    fh.readline()  # every chunk has the header; the result keeps the first
                shutil.copyfileobj(fh, out)
