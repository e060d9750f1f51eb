"""Shadow traffic in process: callers get the served version's answers; the shadow's are compared aside."""

from __future__ import annotations

import time
from contextlib import closing

import httpx
import pytest
from onnx import TensorProto

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

MODEL = "shadowed"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


@pytest.fixture(scope="module")
def shadowed(app, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("shadow")
    with closing(app.client(admin_key)) as api:
        for path in (onnx_models.offset_add_model(folder / "v1.onnx", 0),  # v1: a + b
                     onnx_models.offset_add_model(folder / "v2.onnx", 100),  # v2: 100 more, same top label
                     onnx_models.identity_model(folder / "v3.onnx", TensorProto.FLOAT),  # v3: other inputs
                     onnx_models.custom_domain_model(folder / "v4.onnx")):  # v4: fails validation
            upload(api, MODEL, path)
    return MODEL


def _report(api: httpx.Client, alias: str, compared_or_failed: int) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = api.get(f"/api/v1/models/{MODEL}/aliases/{alias}/shadow").json()
        if report["compared"] + report["failed"] >= compared_or_failed:
            return report
        time.sleep(0.05)
    raise AssertionError(report)


def test_shadow_compares_answers_without_touching_the_callers(api, shadowed):
    r = api.put(f"/api/v1/models/{MODEL}/aliases/production", json={"version": 1,
                                                                    "shadow": {"version": 2, "percent": 50}})
    assert r.status_code == 200 and r.json()["shadow"] == {"version": 2, "percent": 50}, r.text
    for _ in range(20):
        r = api.post(f"/v2/models/{MODEL}/infer", json=BODY)
        assert r.headers["FlashML-Model-Version"] == "1" and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
    report = _report(api, "production", 10)  # 50 %: exactly every second request
    assert report["shadow"] == {"version": 2, "percent": 50} and report["version"] == 2
    assert report["mirrored"] == 10 and report["compared"] == 10 and report["dropped"] == 0
    assert report["agreed"] == 10 and report["agreement"] == 1.0  # v2 adds 100 everywhere: same argmax
    assert report["max_abs_diff"] == 100.0 and report["mean_max_abs_diff"] == 100.0
    for side in ("primary", "shadow"):
        assert report["latency_ms"][side]["p50"] > 0 and report["latency_ms"][side]["p99"] > 0
    assert len(report["recent"]) == 10
    entry = report["recent"][-1]
    assert entry["agree"] is True and entry["max_abs_diff"] == 100.0 and entry["primary_version"] == 1
    assert entry["primary_ms"] > 0 and entry["shadow_ms"] > 0
    # The version's own request counts show the shadow calls; the served answers never changed.
    assert api.get(f"/api/v1/models/{MODEL}/versions/2").json()["stats"]["requests"] >= 10


def test_a_shadow_that_fails_is_counted_and_the_callers_never_see_it(api, shadowed):
    r = api.put(f"/api/v1/models/{MODEL}/aliases/candidate", json={"version": 1,
                                                                   "shadow": {"version": 3, "percent": 100}})
    assert r.status_code == 200, r.text
    for _ in range(5):
        r = api.post(f"/v2/models/{MODEL}/versions/candidate/infer", json=BODY)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
    report = _report(api, "candidate", 5)
    assert report["failed"] == 5 and report["compared"] == 0 and report["agreement"] is None
    assert "x" in report["recent"][0]["error"]
    assert api.delete(f"/api/v1/models/{MODEL}/aliases/candidate").status_code == 204


def test_shadow_of_an_alias_without_one_and_of_no_alias(api, shadowed):
    assert api.put(f"/api/v1/models/{MODEL}/aliases/plain", json={"version": 1}).status_code == 200
    assert api.get(f"/api/v1/models/{MODEL}/aliases/plain/shadow").json() == {"model": MODEL, "alias": "plain",
                                                                             "shadow": None}
    r = api.get(f"/api/v1/models/{MODEL}/aliases/nothing/shadow")
    assert r.status_code == 404 and r.json()["code"] == "alias_not_found"
    r = api.get("/api/v1/models/no-such-model/aliases/plain/shadow")
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"
    assert api.delete(f"/api/v1/models/{MODEL}/aliases/plain").status_code == 204


@pytest.mark.parametrize("shadow,status,code", [
    ({"version": 2}, 400, "bad_alias_shadow"),
    ({"version": 2, "percent": 0}, 400, "bad_alias_shadow"),
    ({"version": 2, "percent": 101}, 400, "bad_alias_shadow"),
    ({"version": 2, "percent": "half"}, 400, "bad_alias_shadow"),
    ({"version": "2", "percent": 10}, 400, "bad_alias_shadow"),
    ({"version": 2, "percent": 10, "extra": 1}, 400, "bad_alias_shadow"),
    ({"version": 1, "percent": 10}, 400, "bad_alias_shadow"),  # v1 already answers
    ({"version": 99, "percent": 10}, 404, "version_not_found"),
    ({"version": 4, "percent": 10}, 409, "version_not_ready"),
])
def test_bad_shadows_are_refused_and_write_nothing(api, shadowed, shadow, status, code):
    before = api.get(f"/api/v1/models/{MODEL}/aliases").json()
    r = api.put(f"/api/v1/models/{MODEL}/aliases/staging", json={"version": 1, "shadow": shadow})
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert api.get(f"/api/v1/models/{MODEL}/aliases").json() == before


def test_a_shadowed_version_is_neither_archived_nor_deleted(api, shadowed):
    r = api.post(f"/api/v1/models/{MODEL}/versions/2/archive")
    assert r.status_code == 409 and r.json()["code"] == "version_aliased"
