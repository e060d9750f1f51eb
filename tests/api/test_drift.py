"""Drift monitoring through the API, in process: strict settings (400 with details.field, nothing changed), the
audit of a change, a check on demand over logged requests, the scores over time, 404s and roles, and max_drift on
a canary guard. The real server, shifted inputs, /metrics and a rollback: tests/e2e/test_drift.py."""

from __future__ import annotations

import io
from contextlib import closing

import numpy as np
import pytest

from tests.helpers.in_process import InProcessApp, publish_offset_versions
from tests.helpers.jobs import push

MODEL = "watched"
SMALL = {"enabled": True, "reference_size": 10, "window_size": 10, "min_predictions": 10}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    with InProcessApp(folder / "data", drift_interval_s=3600) as running:  # no background round meanwhile
        running.call(publish_offset_versions, running.services.registry, folder, (0, 100), MODEL)
        yield running


@pytest.fixture(scope="module")
def api(app):
    with closing(app.client(app.create_key("drift admin"))) as client:
        yield client


def _config(api) -> dict:
    r = api.get(f"/api/v1/models/{MODEL}/drift")
    assert r.status_code == 200, r.text
    return r.json()["config"]


def _infer(api, rng, shift: float) -> None:
    tensors = [{"name": n, "datatype": "FP32", "shape": [20, 4],
                "data": (rng.normal(0, 1, (20, 4)) + [0, 0, 0, shift]).ravel().tolist()} for n in ("a", "b")]
    r = api.post(f"/v2/models/{MODEL}/infer", json={"inputs": tensors})
    assert r.status_code == 200, r.text


def test_off_by_default_with_nothing_scored(api):
    r = api.get(f"/api/v1/models/{MODEL}/drift")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["version"], body["versions"], body["features"], body["alert"]) == (None, [], [], False)
    assert body["config"] == {"enabled": False, "reference": "first", "reference_dataset": None,
                              "reference_size": 500, "window_size": 500, "window_s": None, "min_predictions": 100,
                              "threshold": 0.2, "rollback": True}
    assert body["threshold"] == 0.2


@pytest.mark.parametrize("change,field", [
    ({"drift": True}, "drift"),
    ({"drift": {"enabled": "yes"}}, "drift.enabled"),
    ({"drift": {"threshold": 0}}, "drift.threshold"),
    ({"drift": {"threshold": "0.3"}}, "drift.threshold"),
    ({"drift": {"reference": "last"}}, "drift.reference"),
    ({"drift": {"reference_size": 5}}, "drift.reference_size"),
    ({"drift": {"window_size": 10**6}}, "drift.window_size"),
    ({"drift": {"window_s": -1}}, "drift.window_s"),
    ({"drift": {"min_predictions": 0}}, "drift.min_predictions"),
    ({"drift": {"min_predictions": 600}}, "drift.min_predictions"),  # more than the window of 500 holds
    ({"drift": {"reference": "dataset"}}, "drift.reference_dataset"),
    ({"drift": {"reference": "dataset", "reference_dataset": "0123456789abcdef"}}, "drift.reference_dataset"),
    ({"drift": {"rollback": None}}, "drift.rollback"),
    ({"drift": {"enabled": True, "bins": 10}}, "drift.bins"),
    # a good response cache change beside a bad drift change changes neither
    ({"drift": {"threshold": -1}, "response_cache": {"enabled": True}}, "drift.threshold"),
])
def test_bad_settings_are_400_naming_the_field_and_change_nothing(api, change, field):
    before = (_config(api), api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]["enabled"])
    r = api.patch(f"/api/v1/models/{MODEL}", json=change)
    assert r.status_code == 400 and r.json()["code"] == "bad_drift_config", r.text
    assert r.json()["details"]["field"] == field
    assert (_config(api), api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]["enabled"]) == before


def test_a_change_keeps_what_it_leaves_out_and_is_audited(api):
    r = api.patch(f"/api/v1/models/{MODEL}", json={"drift": {"threshold": 0.3, "window_s": 600}})
    assert r.status_code == 200, r.text
    assert (r.json()["threshold"], r.json()["window_s"], r.json()["enabled"]) == (0.3, 600, False)
    r = api.patch(f"/api/v1/models/{MODEL}", json={"drift": {"window_s": None, "rollback": False}})
    assert (r.json()["threshold"], r.json()["window_s"], r.json()["rollback"]) == (0.3, None, False)
    events = [e["detail"] for e in api.get("/api/v1/audit").json()
              if e["action"] == "model.drift_config" and e["target"] == MODEL]
    assert events[0]["rollback"] is False and events[1]["window_s"] == 600
    assert api.patch("/api/v1/models/nope", json={"drift": {"enabled": True}}).status_code == 404


def test_a_check_on_demand_scores_logged_requests_and_the_series_grows(api):
    r = api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True}, "drift": SMALL})
    assert r.status_code == 200, r.text
    r = api.post(f"/api/v1/models/{MODEL}/drift/check")
    assert r.status_code == 200, r.text
    waiting = {v["version"]: v["reason"] for v in r.json()["versions"]}
    assert waiting == {1: "the reference holds 0 of the first 10 logged predictions it needs",
                       2: "the reference holds 0 of the first 10 logged predictions it needs"}
    rng = np.random.default_rng(2)
    for shift in [0.0] * 10 + [3.0] * 10:  # calls without a version: the newest ready one, v2, answers
        _infer(api, rng, shift)
    first = api.post(f"/api/v1/models/{MODEL}/drift/check").json()
    second = api.post(f"/api/v1/models/{MODEL}/drift/check").json()
    scored = {v["version"]: v for v in second["versions"]}
    assert scored[2]["scored"] and scored[2]["alert"] and not scored[1]["scored"]
    scores = {s["feature"]: s for s in scored[2]["scores"]}
    assert set(scores) == {f"{n}[{i}]" for n in "ab" for i in range(4)} | {"output"}
    assert scores["a[3]"]["above"] and scores["b[3]"]["above"] and not scores["a[0]"]["above"]
    report = api.get(f"/api/v1/models/{MODEL}/drift").json()
    assert report["version"] == 2 and report["versions"] == [2] and report["alert"] is True
    assert report["threshold"] == 0.3 and report["checked_at"] == second["at"]
    assert [f["feature"] for f in report["features"]][:5] == ["a[0]", "a[1]", "a[2]", "a[3]", "b[0]"]
    assert report["features"][-1]["feature"] == "output"
    series = {f["feature"]: f for f in report["features"]}["a[3]"]
    assert [p["at"] for p in series["points"]] == [first["at"], second["at"]] and series["above"]
    later = api.get(f"/api/v1/models/{MODEL}/drift", params={"since": second["at"]}).json()
    assert all(len(f["points"]) == 1 for f in later["features"])
    assert api.get(f"/api/v1/models/{MODEL}/drift", params={"version": 1}).json()["features"] == []
    alerts = [e for e in api.get("/api/v1/audit").json() if e["action"] == "model.drift"]
    assert {e["detail"]["feature"] for e in alerts} >= {"a[3]", "b[3]"}
    assert all(e["target"] == f"{MODEL}/v2" and e["detail"]["threshold"] == 0.3 for e in alerts)


@pytest.mark.parametrize("method,path,code", [
    ("get", "/api/v1/models/nope/drift", "model_not_found"),
    ("post", "/api/v1/models/nope/drift/check", "model_not_found"),
    ("get", f"/api/v1/models/{MODEL}/drift?version=99", "version_not_found"),
])
def test_unknown_models_and_versions_are_404(api, method, path, code):
    r = getattr(api, method)(path)
    assert r.status_code == 404 and r.json()["code"] == code, r.text


def test_viewers_read_the_scores_and_only_maintainers_check_or_change(app):
    with closing(app.client(app.create_key("drift viewer", "viewer"))) as viewer:
        assert viewer.get(f"/api/v1/models/{MODEL}/drift").status_code == 200
        for r in (viewer.post(f"/api/v1/models/{MODEL}/drift/check"),
                  viewer.patch(f"/api/v1/models/{MODEL}", json={"drift": {"enabled": False}})):
            assert r.status_code == 403 and r.json()["code"] == "role_forbidden"


def test_a_canary_guard_may_watch_drift_alone(api):
    split = {"versions": {"1": 90, "2": 10}}
    r = api.put(f"/api/v1/models/{MODEL}/aliases/canary", json={**split, "guard": {"max_drift": 0.25}})
    assert r.status_code == 200 and r.json()["guard"]["max_drift"] == 0.25, r.text
    r = api.put(f"/api/v1/models/{MODEL}/aliases/canary", json={**split, "guard": {"max_drift": 0}})
    assert r.status_code == 400 and r.json()["code"] == "bad_alias_guard", r.text
    assert r.json()["details"]["field"] == "guard.max_drift"
    assert api.delete(f"/api/v1/models/{MODEL}/aliases/canary").status_code == 204


def test_a_dataset_uploaded_for_batch_jobs_can_be_the_reference(app, api, tmp_path):
    app.call(publish_offset_versions, app.services.registry, tmp_path, (0,), "referenced")
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    np.savez(buffer, a=rng.normal(0, 1, (400, 4)).astype(np.float32), b=rng.normal(0, 1, (400, 4)).astype(np.float32))
    dataset = push(api, "reference.npz", buffer.getvalue())
    assert dataset.status_code == 201, dataset.text
    change = {"enabled": True, "reference": "dataset", "reference_dataset": dataset.json()["id"],
              "reference_size": 300, "window_size": 10, "min_predictions": 10}
    r = api.patch("/api/v1/models/referenced", json={"prediction_log": {"enabled": True}, "drift": change})
    assert r.status_code == 200, r.text
    for _ in range(10):  # column 3 of input a moved by two standard deviations
        tensors = [{"name": n, "datatype": "FP32", "shape": [20, 4],
                    "data": (rng.normal(0, 1, (20, 4)) + [0, 0, 0, 2.0 if n == "a" else 0]).ravel().tolist()}
                   for n in ("a", "b")]
        assert api.post("/v2/models/referenced/infer", json={"inputs": tensors}).status_code == 200
    check = api.post("/api/v1/models/referenced/drift/check").json()
    scores = {s["feature"]: s for s in check["versions"][0]["scores"]}
    assert set(scores) == {f"{n}[{i}]" for n in "ab" for i in range(4)} | {"output"}  # the version's answers too
    assert scores["a[3]"]["above"] and [f for f, s in scores.items() if s["above"] and f.startswith("b")] == []
    assert not scores["a[0]"]["above"] and not scores["b[3]"]["above"]
