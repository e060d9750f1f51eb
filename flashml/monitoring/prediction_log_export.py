"""A model's logged predictions as one file: JSON Lines (the lines as stored) or Parquet, in bounded memory.

JSON Lines are streamed as read, a chunk at a time. Parquet is written row group by row group to a file in
scratch space, then sent: a first pass over the lines finds each tensor's datatype and number of dimensions,
so each becomes a typed list column (``input.x`` as list<list<float>>, ...); a tensor whose datatype or
dimensions differ between predictions becomes a column of JSON text instead. Summaries go in ``summary``
(JSON text). Both run in worker threads; only the lines of one row group are in memory at once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from flashml.auth.principal import Principal, require_role
from flashml.errors import ForbiddenError
from flashml.monitoring.prediction_log import PredictionLog

CHUNK_BYTES = 256 * 1024
ROW_GROUP = 1000
_VALUES = {"BOOL": pa.bool_(), "UINT8": pa.uint8(), "UINT16": pa.uint16(), "UINT32": pa.uint32(),
           "UINT64": pa.uint64(), "INT8": pa.int8(), "INT16": pa.int16(), "INT32": pa.int32(), "INT64": pa.int64(),
           "FP16": pa.float32(), "BF16": pa.float32(), "FP32": pa.float32(), "FP64": pa.float64(), "BYTES": pa.string()}
_decoder = msgspec.json.Decoder(dict[str, Any])
JSON_TEXT = {b"flashml": b"json"}  # the field metadata of a tensor column that holds JSON text
BASE = pa.schema([("at", pa.float64()), ("version", pa.int64()), ("request_id", pa.string())])


def selected_lines(log: PredictionLog, model: str, version: int | None, since: float | None,
                   until: float | None) -> Iterator[bytes]:
    """The lines of one version (or every version, one after another), oldest first, within the retention."""
    since = max(since or 0.0, time.time() - log.limits(model)[0])
    for segment in log.store.segments(model, version):
        if segment.last_at < since or (until is not None and segment.first_at >= until):
            continue
        yield from log.lines_between(segment, since, until)


def jsonl_chunks(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines gathered into chunks of about CHUNK_BYTES, for a streamed answer."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


def _depth(value: pa.DataType, ndim: int) -> pa.DataType:
    for _ in range(ndim):
        value = pa.list_(value)
    return value


def _tensors(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for side, key in (("input", "inputs"), ("output", "outputs")):
        for name, tensor in (doc.get(key) or {}).items():
            yield f"{side}.{name}", tensor


def schema(lines: Iterator[bytes]) -> pa.Schema:
    """The first pass: a column per tensor, typed when every prediction has it with one datatype and rank."""
    kinds: dict[str, set[tuple[str, int]]] = {}
    for line in lines:
        try:
            doc = _decoder.decode(line)
        except msgspec.DecodeError:
            continue
        for column, tensor in _tensors(doc):
            kinds.setdefault(column, set()).add((str(tensor.get("datatype")), len(tensor.get("shape") or ())))
    fields = list(BASE)
    for column in sorted(kinds, key=lambda c: (not c.startswith("input."), c)):
        only = next(iter(kinds[column])) if len(kinds[column]) == 1 else None
        if only is not None and only[0] in _VALUES:
            fields.append(pa.field(column, _depth(_VALUES[only[0]], only[1])))
        else:  # the tensor as {"datatype", "shape", "data"} JSON text
            fields.append(pa.field(column, pa.string(), metadata=JSON_TEXT))
    fields.append(pa.field("summary", pa.string()))
    return pa.schema(fields)


def _row_group(docs: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for doc in docs:
        tensors = dict(_tensors(doc))
        columns["at"].append(doc.get("at"))
        columns["version"].append(doc.get("version"))
        columns["request_id"].append(doc.get("request_id"))
        columns["summary"].append(json.dumps({"inputs": doc.get("input_summary") or {},
                                              "outputs": doc.get("output_summary") or {}}))
        for field in schema:
            if "." in field.name:
                tensor = tensors.get(field.name)
                if tensor is None:
                    columns[field.name].append(None)
                elif field.metadata == JSON_TEXT:
                    columns[field.name].append(json.dumps(tensor))
                else:
                    columns[field.name].append(tensor["data"])
    return pa.record_batch([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def write_parquet(log: PredictionLog, model: str, version: int | None, since: float | None, until: float | None,
                  dest: Path) -> int:
    """Write the selected predictions to ``dest``; answers how many rows it holds."""
    until = until if until is not None else time.time()  # both passes see the same lines
    table_schema = schema(selected_lines(log, model, version, since, until))
    rows = 0
    with pq.ParquetWriter(dest, table_schema) as writer:
        docs: list[dict[str, Any]] = []
        for line in selected_lines(log, model, version, since, until):
            try:
                docs.append(_decoder.decode(line))
            except msgspec.DecodeError:
                continue
            if len(docs) >= ROW_GROUP:
                writer.write_batch(_row_group(docs, table_schema))
                rows, docs = rows + len(docs), []
        if docs or not rows:
            writer.write_batch(_row_group(docs, table_schema))
            rows += len(docs)
    return rows


def require_reader(principal: Principal, model: str) -> None:
    """Logged predictions hold what callers sent: an admin reads every model's, anyone else at least a viewer whose
    key is allowed this model (a key limited to other models gets 403 model_not_allowed)."""
    require_role(principal, "viewer")
    if not principal.is_admin and principal.models is not None and model not in principal.models:
        raise ForbiddenError(f"This API key may not read the predictions of model {model!r}.",
                             code="model_not_allowed")


async def stream_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk read in a worker thread, so reading files never holds up the event loop."""
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


async def parquet_file(log: PredictionLog, model: str, version: int | None, since: float | None,
                       until: float | None, folder: Path) -> Path:
    """The selection as a Parquet file in ``folder`` (the caller removes it once sent)."""
    await log.flush()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    dest = folder / f"predictions-{uuid.uuid4().hex}.parquet"
    try:
        await asyncio.to_thread(write_parquet, log, model, version, since, until, dest)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest
