"""Exports of the prediction log: JSON Lines as stored, Parquet with a typed list column per tensor."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flashml.monitoring import prediction_log_export as export
from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_records import LogConfig


def _filled(tmp_path, config: LogConfig, offers) -> PredictionLog:
    async def run():
        log = PredictionLog(tmp_path / "predictions", 3600, 10**9)
        await log.start()
        log.set_config("m", config)
        for version, inputs, outputs in offers:
            log.offer("m", version, inputs, outputs, f"r{len(inputs)}")
        await log.close()
        return log

    return asyncio.run(run())


def test_parquet_has_a_typed_list_column_per_tensor_and_json_where_one_does_not_fit(tmp_path, monkeypatch):
    offers = [(1, {"x": np.full((2, 3), i, np.float32), "odd": np.zeros((1,) * (1 + i % 2), np.int64)},
               {"y": np.array([i], np.int64)}) for i in range(5)]
    log = _filled(tmp_path, LogConfig(enabled=True), offers)
    dest = tmp_path / "out.parquet"
    monkeypatch.setattr(export, "ROW_GROUP", 2)  # several row groups from five predictions
    assert export.write_parquet(log, "m", 1, None, None, dest) == 5
    table = pq.read_table(dest)
    assert pq.ParquetFile(dest).metadata.num_row_groups == 3
    assert table.column_names == ["at", "version", "request_id", "input.odd", "input.x", "output.y", "summary"]
    assert table.schema.field("input.x").type.value_type.value_type == pa.float32()  # list<list<float>>
    assert table.column("input.x").to_pylist()[4] == [[4.0] * 3] * 2
    assert table.column("output.y").to_pylist() == [[i] for i in range(5)]
    odd = table.column("input.odd").to_pylist()  # rank 1 and 2 in turn: JSON text
    assert json.loads(odd[1]) == {"datatype": "INT64", "shape": [1, 1], "data": [[0]]}
    assert json.loads(table.column("summary").to_pylist()[2])["inputs"]["x"]["mean"] == [2.0] * 3


def test_redacted_logs_export_no_input_columns_and_jsonl_is_the_stored_lines(tmp_path):
    offers = [(v, {"x": np.ones((1, 2), np.float32)}, {"y": np.zeros((1, 1), np.float32)}) for v in (1, 2, 1)]
    log = _filled(tmp_path, LogConfig(enabled=True, redact_inputs=True), offers)
    dest = tmp_path / "out.parquet"
    assert export.write_parquet(log, "m", None, None, None, dest) == 3
    table = pq.read_table(dest)
    assert "input.x" not in table.column_names and table.column("version").to_pylist() == [1, 1, 2]
    text = b"".join(export.jsonl_chunks(export.selected_lines(log, "m", 2, None, None)))
    docs = [json.loads(line) for line in text.splitlines()]
    assert len(docs) == 1 and docs[0]["inputs"] is None and docs[0]["input_summary"]["x"]["mean"] == [1.0, 1.0]
    empty = tmp_path / "empty.parquet"
    assert export.write_parquet(log, "m", 1, docs[0]["at"] + 10, None, empty) == 0
    assert pq.read_table(empty).num_rows == 0
