"""GET /metrics in process: Prometheus's text format from prometheus_client, who may read it, and the counters that
are not on the request path (uploads that finished validation, rows batch jobs scored).

Litestar's TestClient calls from the address "testclient", never loopback, so under the default metrics_access
(loopback) these calls need a key; tests/unit/api/test_prometheus.py and tests/e2e/test_metrics_endpoint.py check
the addresses themselves.
"""

from __future__ import annotations

from contextlib import closing

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import onnx_models
from tests.helpers.in_process import InProcessApp
from tests.helpers.jobs import csv_dataset, push, run_job
from tests.helpers.uploads import upload


def scrape(client) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(r.text) for s in f.samples}


def test_a_viewer_key_reads_the_exposition_and_it_is_not_an_openapi_operation(app, api):
    viewer = app.create_key("metrics viewer", "viewer")
    got = scrape(app.client(viewer))
    names = {name for name, _ in got}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert ("flashml_model_uploads_total", frozenset({("outcome", "ready")})) in got
    assert "/metrics" not in api.get("/schema/openapi.json").json()["paths"]


def test_refusals_are_json_errors_that_name_the_setting(app):
    no_key = app.client().get("/metrics")
    assert no_key.status_code == 401 and no_key.json()["code"] == "missing_key"
    assert "metrics_access is loopback" in no_key.json()["error"]
    inference = app.client(app.create_key("metrics inference", "inference")).get("/metrics")
    assert inference.status_code == 403 and inference.json()["code"] == "role_forbidden"
    assert "viewer API key" in inference.json()["error"] and "metrics_access" in inference.json()["error"]


def test_open_needs_no_key(tmp_path):
    with InProcessApp(tmp_path / "data", metrics_access="open") as running:
        assert "process_cpu_seconds_total" in {name for name, _ in scrape(running.client())}


def test_uploads_that_finished_validation_are_counted_by_outcome(api, tmp_path):
    before = scrape(api)
    path = onnx_models.add_model(tmp_path / "add.onnx")
    assert upload(api, "metrics-upload", path).status_code == 201
    assert upload(api, "metrics-upload", b"this is not an ONNX model").status_code == 422
    after = scrape(api)
    for outcome in ("ready", "failed"):
        sample = ("flashml_model_uploads_total", frozenset({("outcome", outcome)}))
        assert after[sample] - before[sample] == 1, outcome


def test_rows_batch_jobs_scored_are_counted_per_version(app, admin_key, adder):
    with closing(app.client(admin_key)) as api:
        sample = ("flashml_job_rows_scored_total", frozenset({("model", adder), ("version", "1")}))
        before = scrape(api).get(sample, 0)
        dataset = push(api, "metered.csv", csv_dataset(20, bad={3, 11})).json()
        job = run_job(api, model=adder, version="1", dataset=dataset["id"], chunk_rows=8, output_format="csv")
        assert job["state"] == "succeeded", job
        assert scrape(api)[sample] - before == 18  # the two bad rows were skipped, not scored
