"""Prediction logging over real HTTP: switched on per model, requests logged with their request ids, kept across a
restart, exported as JSON Lines and Parquet (API and CLI) and read back with json and pyarrow; redaction keeps raw
inputs off the disk; a model whose log is off writes nothing; deleting a model removes its log."""

from __future__ import annotations

import json

import httpx
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

LOGGED, QUIET = "logged", "quiet"
SECRET = 98765.5  # an input value redaction must keep off the disk


def _infer(api: httpx.Client, model: str, value: float, request_id: str | None = None) -> None:
    tensors = [{"name": n, "datatype": "FP32", "shape": [2, 4], "data": [value] * 8} for n in ("a", "b")]
    r = api.post(f"/v2/models/{model}/infer", json={"inputs": tensors},
                 headers={"X-Request-Id": request_id} if request_id else None)
    assert r.status_code == 200, r.text


def _jsonl(api: httpx.Client, model: str, **params) -> list[dict]:
    r = api.get(f"/api/v1/models/{model}/predictions", params={"format": "jsonl", **params})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def _metric(api: httpx.Client, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_logged_predictions_survive_a_restart_and_export_as_jsonl_and_parquet(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        key = srv.create_key("prediction log", "admin")
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
            for model in (LOGGED, QUIET):
                assert upload(api, model, onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
            assert api.get(f"/api/v1/models/{LOGGED}").json()["prediction_log"]["enabled"] is False
            r = api.patch(f"/api/v1/models/{LOGGED}", json={"prediction_log": {"enabled": True}})
            assert r.status_code == 200 and r.json()["enabled"] is True, r.text
            for i in range(5):
                _infer(api, LOGGED, i, f"client-req-{i}")
                _infer(api, QUIET, i)  # off by default: never logged
            assert _metric(api, "flashml_prediction_log_records_total", {"model": LOGGED, "version": "1"}) == 5
            assert _metric(api, "flashml_prediction_log_dropped_total", {"model": LOGGED}) is None  # none dropped
            for i in (5, 6):
                _infer(api, LOGGED, i, f"client-req-{i}")
        srv.stop()  # at once: a clean stop writes what is still queued

        srv = ServerProcess(srv.data_dir, *SERVER_FLAGS).start()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
            view = api.get(f"/api/v1/models/{LOGGED}").json()["prediction_log"]
            assert view["enabled"] is True and view["records"] == 7 and view["written"] == 0  # from the last run
            docs = _jsonl(api, LOGGED, version=1)
            assert [d["request_id"] for d in docs] == [f"client-req-{i}" for i in range(7)]
            assert docs[3]["inputs"]["a"] == {"datatype": "FP32", "shape": [2, 4], "data": [[3.0] * 4] * 2}
            assert docs[3]["outputs"]["sum"]["data"] == [[6.0] * 4] * 2
            assert docs[3]["input_summary"]["a"]["mean"] == [3.0] * 4
            assert _jsonl(api, LOGGED, since=docs[2]["at"], until=docs[4]["at"]) == docs[2:4]

            r = api.get(f"/api/v1/models/{LOGGED}/predictions", params={"format": "parquet"})
            assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
            (tmp_path / "api.parquet").write_bytes(r.content)
            table = pq.read_table(tmp_path / "api.parquet")
            assert table.column_names == ["at", "version", "request_id", "input.a", "input.b", "output.sum",
                                          "summary"]
            assert table.column("request_id").to_pylist() == [d["request_id"] for d in docs]
            assert table.column("input.b").to_pylist()[4] == [[4.0] * 4] * 2
            assert table.column("at").to_pylist() == [d["at"] for d in docs]

            conn = ("--url", srv.url, "--key", key)
            out = tmp_path / "cli.parquet"
            done = flashml("predictions", "export", LOGGED, "--version", "1", "--format", "parquet", "-o", str(out),
                           *conn)
            assert done.stdout.startswith(f"predictions saved to {out}")
            assert pq.read_table(out).equals(table)
            assert flashml("models", "log", QUIET, *conn).stdout.startswith(f"{QUIET}: prediction log off; 0 kept")
            assert _jsonl(api, QUIET) == [] and not (srv.data_dir / "predictions" / QUIET).exists()

            # Redacted: outputs and input summaries only; the raw values never reach the disk.
            line = flashml("models", "log", LOGGED, "--redact-inputs", *conn).stdout
            assert "outputs and input summaries" in line
            _infer(api, LOGGED, SECRET, "client-secret")
            secret_doc = _jsonl(api, LOGGED)[-1]
            assert secret_doc["request_id"] == "client-secret" and secret_doc["inputs"] is None
            assert secret_doc["input_summary"]["a"]["mean"] == [SECRET] * 4  # a mean is what stays
            assert secret_doc["outputs"]["sum"]["data"] == [[2 * SECRET] * 4] * 2
            files = list((srv.data_dir / "predictions" / LOGGED).rglob("*.jsonl"))
            assert files and all(f'"data":[[{SECRET}' not in f.read_text() for f in files)

            # Off again: nothing more is written; deleting the model removes its log.
            flashml("models", "log", LOGGED, "--off", *conn)
            _infer(api, LOGGED, 1)
            assert len(_jsonl(api, LOGGED)) == 8
            assert api.delete(f"/api/v1/models/{LOGGED}", params={"force": True}).status_code == 204
            assert not (srv.data_dir / "predictions" / LOGGED).exists()
    finally:
        srv.stop()
