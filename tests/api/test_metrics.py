"""GET /api/v1/metrics in process: it counts exactly the inference calls made, and only viewers+ read it."""

from __future__ import annotations

from contextlib import closing

import pytest

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

MODEL = "metered"
GOOD = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
BAD = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]},
                  {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": [1, 1, 1]}]}


@pytest.fixture(scope="module")
def metered(app, admin_key, tmp_path_factory):
    path = onnx_models.add_model(tmp_path_factory.mktemp("metrics") / "add.onnx")
    with closing(app.client(admin_key)) as c:
        assert upload(c, MODEL, path).status_code == 201
    return MODEL


def _call(app, token: str, body: dict, path: str = f"/v2/models/{MODEL}/infer") -> int:
    return app.client().post(path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
                      ).status_code


def test_metrics_count_exactly_the_calls_made(app, api, metered):
    before = api.get("/api/v1/metrics", params={"model": MODEL})
    assert before.status_code == 200, before.text
    assert before.json()["summary"]["requests"] == 0
    assert before.json()["summary"]["p50_ms"] is None

    key = app.create_key("metrics-infer", "inference", models=(MODEL,))
    limited = api.post("/api/v1/keys", json={"name": "metrics-limited", "role": "inference", "rate_limit_per_s": 0.01,
                                             "burst": 1}).json()["token"]
    statuses = [_call(app, key, GOOD) for _ in range(3)]
    statuses += [_call(app, key, BAD) for _ in range(2)]
    statuses.append(_call(app, key, GOOD, f"/v2/models/{MODEL}/versions/9/infer"))
    statuses += [_call(app, limited, GOOD), _call(app, limited, GOOD)]
    assert statuses == [200, 200, 200, 400, 400, 404, 200, 429]

    report = api.get("/api/v1/metrics", params={"model": MODEL}).json()
    assert report["model"] == MODEL and report["window_minutes"] == 60 and len(report["points"]) == 60
    s = report["summary"]
    assert (s["requests"], s["errors"], s["errors_4xx"], s["errors_5xx"], s["rejected"]) == (8, 4, 4, 0, 1)
    assert s["error_rate"] == 0.5 and s["rps"] > 0
    assert 0 < s["p50_ms"] <= s["p99_ms"]
    assert 0 < report["quantile_precision"] < 0.05
    assert sum(p["requests"] for p in report["points"]) == 8
    assert sum(p["errors"] for p in report["points"]) == 4
    busy = [p for p in report["points"] if p["requests"]]
    assert all(p["timestamp"] % 60 == 0 and p["p50_ms"] is not None for p in busy)
    assert [p["p50_ms"] for p in report["points"] if not p["requests"]] == [None] * (60 - len(busy))

    (activity,) = report["models"]
    assert activity["model"] == MODEL and activity["registered"] and activity["serving_version"] == 1
    assert activity["versions"] == [{"version": 1, "state": "ready"}]
    assert activity["summary"]["requests"] == 8

    (where,) = report["running"]
    assert (where["model"], where["version"], where["device"]) == (MODEL, 1, "cpu")
    assert "CPUExecutionProvider" in where["providers"] and where["instance_count"] >= 1
    assert where["requests"] == 4 and where["in_flight"] == 0  # the four that reached the model
    # The version saw the six calls it was found for (not the 404 for v9, nor the 429 before the lookup).
    assert (where["last_hour"]["requests"], where["last_hour"]["errors"]) == (6, 2)
    assert isinstance(where["host_memory_bytes"], int) and where["gpu_memory_bytes"] is None
    assert where["gpu_memory_note"] is None  # on the CPU there is no GPU memory to read, and nothing to explain
    process = report["process"]
    assert process["device"] == "cpu" and process["cpu_count"] >= 1 and process["rss_bytes"] > 50 * 2**20
    assert process["gpu_memory_bytes"] is None and process["gpu_memory_note"] is None

    # All models together hold at least these requests (other tests share this app).
    everything = api.get("/api/v1/metrics").json()
    assert everything["model"] is None and everything["summary"]["requests"] >= 8
    assert MODEL in [m["model"] for m in everything["models"]]
    assert (MODEL, 1) in [(r["model"], r["version"]) for r in everything["running"]]


def test_metrics_roles_and_unknown_model(app, api, metered):
    viewer = app.create_key("metrics-viewer", "viewer")
    inference = app.create_key("metrics-inference", "inference")
    r = app.client().get("/api/v1/metrics", headers={"Authorization": f"Bearer {viewer}"}, timeout=60)
    assert r.status_code == 200 and "summary" in r.json()
    r = app.client().get("/api/v1/metrics", headers={"Authorization": f"Bearer {inference}"}, timeout=60)
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    assert app.client().get("/api/v1/metrics", timeout=60).status_code == 401
    r = api.get("/api/v1/metrics", params={"model": "no-such-model-here"})
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"


def test_metrics_in_the_openapi_document(app):
    doc = app.client().get("/schema/openapi.json", timeout=60).json()
    op = doc["paths"]["/api/v1/metrics"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["model"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MetricsReport"}
    schemas = doc["components"]["schemas"]
    assert {"summary", "points", "models", "running", "process"} <= set(schemas["MetricsReport"]["properties"])
    assert {"timestamp", "requests", "errors", "rps", "error_rate", "p50_ms", "p99_ms"} <= set(
        schemas["MetricsPoint"]["properties"])
    assert {"device", "providers", "instance_count", "host_memory_bytes"} <= set(
        schemas["RunningVersion"]["properties"])
