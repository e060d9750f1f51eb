"""Prediction log settings and export through the API, in process: strict bodies (400 with details.field), the
server's limits, who may read the log (403), and an export of what the requests logged."""

from __future__ import annotations

import json
from contextlib import closing

import pytest

from tests.helpers.in_process import InProcessApp, publish_offset_versions

MODEL = "logged"
LIMITS = {"prediction_log_retention_s": 3600.0, "prediction_log_max_bytes": 1_000_000}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prediction-log")
    with InProcessApp(folder / "data", **LIMITS) as running:
        running.call(publish_offset_versions, running.services.registry, folder, (0,), MODEL)
        running.call(publish_offset_versions, running.services.registry, folder, (0,), "other")
        yield running


@pytest.fixture(scope="module")
def api(app):
    with closing(app.client(app.create_key("log admin"))) as client:
        yield client


def _log(api) -> dict:
    r = api.get(f"/api/v1/models/{MODEL}")
    assert r.status_code == 200, r.text
    return r.json()["prediction_log"]


def _infer(api, value: float) -> None:
    tensors = [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [value] * 4} for n in ("a", "b")]
    r = api.post(f"/v2/models/{MODEL}/infer", json={"inputs": tensors})
    assert r.status_code == 200, r.text


def test_off_by_default_with_the_servers_limits(api):
    view = _log(api)
    assert view == {"enabled": False, "sample_rate": 1.0, "mode": "full", "redact_inputs": False,
                    "retention_s": 3600.0, "max_bytes": 1_000_000, "limit_retention_s": 3600.0,
                    "limit_max_bytes": 1_000_000, "records": 0, "bytes": 0, "oldest_at": None, "newest_at": None,
                    "written": 0, "dropped": 0}


@pytest.mark.parametrize("change,code,field", [
    ({}, "bad_model_patch", None),
    ({"prediction_log": True}, "bad_prediction_log", "prediction_log"),
    ({"prediction_log": {"enabled": "yes"}}, "bad_prediction_log", "prediction_log.enabled"),
    ({"prediction_log": {"sample_rate": 0}}, "bad_prediction_log", "prediction_log.sample_rate"),
    ({"prediction_log": {"sample_rate": 1.5}}, "bad_prediction_log", "prediction_log.sample_rate"),
    ({"prediction_log": {"sample_rate": "0.5"}}, "bad_prediction_log", "prediction_log.sample_rate"),
    ({"prediction_log": {"mode": "raw"}}, "bad_prediction_log", "prediction_log.mode"),
    ({"prediction_log": {"redact_inputs": 1}}, "bad_prediction_log", "prediction_log.redact_inputs"),
    ({"prediction_log": {"retention_s": 0}}, "bad_prediction_log", "prediction_log.retention_s"),
    ({"prediction_log": {"retention_s": 3601}}, "bad_prediction_log", "prediction_log.retention_s"),
    ({"prediction_log": {"max_bytes": 1_000_001}}, "bad_prediction_log", "prediction_log.max_bytes"),
    ({"prediction_log": {"max_bytes": 10.5}}, "bad_prediction_log", "prediction_log.max_bytes"),
    ({"prediction_log": {"enabled": True, "rate": 1}}, "bad_prediction_log", "prediction_log.rate"),
    # a good log change beside a bad cache change changes neither
    ({"prediction_log": {"enabled": True}, "response_cache": {"enabled": True, "max_entries": 10**9}},
     "bad_response_cache", None),
])
def test_bad_settings_are_400_naming_the_field_and_change_nothing(api, change, code, field):
    before = _log(api)
    r = api.patch(f"/api/v1/models/{MODEL}", json=change)
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    if field:
        assert r.json()["details"]["field"] == field
    assert _log(api) == before


def test_a_change_keeps_what_it_leaves_out_and_is_audited(api):
    r = api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True, "sample_rate": 0.5,
                                                                      "mode": "summary", "retention_s": 60}})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True and r.json()["sample_rate"] == 0.5 and r.json()["retention_s"] == 60
    r = api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": False}})
    assert (r.json()["enabled"], r.json()["sample_rate"], r.json()["mode"], r.json()["retention_s"]) \
        == (False, 0.5, "summary", 60)
    events = [e["detail"] for e in api.get("/api/v1/audit").json()
              if e["action"] == "model.prediction_log" and e["target"] == MODEL]
    assert events[0]["enabled"] is False and events[1]["enabled"] is True and events[1]["mode"] == "summary"
    r = api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True, "sample_rate": 1,
                                                                      "mode": "full", "retention_s": 3600}})
    assert r.status_code == 200, r.text
    assert api.patch("/api/v1/models/nope", json={"prediction_log": {"enabled": True}}).status_code == 404


def test_requests_are_logged_and_exported(api):
    for value in (1, 2, 3):
        _infer(api, value)
    r = api.get(f"/api/v1/models/{MODEL}/predictions", params={"version": 1})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson"), r.text
    assert "logged-v1-predictions.jsonl" in r.headers["content-disposition"]
    docs = [json.loads(line) for line in r.text.splitlines()]
    assert [d["inputs"]["a"]["data"] for d in docs[-3:]] == [[[v] * 4] for v in (1.0, 2.0, 3.0)]
    assert docs[-1]["outputs"]["sum"]["data"] == [[6.0] * 4] and docs[-1]["version"] == 1
    assert api.get(f"/api/v1/models/{MODEL}/predictions", params={"since": docs[-1]["at"]}).text.count("\n") == 1
    view = _log(api)
    assert view["records"] == view["written"] >= 3 and view["bytes"] > 0 and view["newest_at"] >= docs[-1]["at"]
    r = api.get(f"/api/v1/models/{MODEL}/predictions", params={"format": "xml"})
    assert r.status_code == 400 and r.json()["code"] == "bad_format" and r.json()["details"]["field"] == "format"
    assert api.get("/api/v1/models/nope/predictions").status_code == 404


@pytest.mark.parametrize("role,models,status,code", [
    ("viewer", (MODEL,), 200, None),
    ("maintainer", (), 200, None),  # every model
    ("viewer", ("other",), 403, "model_not_allowed"),
    ("inference", (MODEL,), 403, "role_forbidden"),  # inference keys use models, they do not read the log
])
def test_who_may_read_the_log(app, role, models, status, code):
    with closing(app.client(app.create_key(f"{role} of {' '.join(models) or 'all'}", role, models))) as client:
        r = client.get(f"/api/v1/models/{MODEL}/predictions")
        assert r.status_code == status, r.text
        if code:
            assert r.json()["code"] == code
        if role == "viewer":  # reading is not changing: a viewer's PATCH is refused
            r = client.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": False}})
            assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
