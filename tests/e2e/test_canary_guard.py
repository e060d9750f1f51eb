"""Automatic rollback of a guarded canary, on a real server whose check runs often: a failing canary goes,
a healthy one stays, and the audit log keeps the numbers."""

from __future__ import annotations

import time

import httpx
import pytest
from onnx import TensorProto

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "guarded"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
GUARD = {"max_error_rate": 0.2, "window_s": 30, "min_requests": 5}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guard")
    srv = ServerProcess(folder / "data", *SERVER_FLAGS, "--canary-check-interval-s", "0.2").start()
    key = srv.create_key()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
            # v1 and v3 add; v2 takes an input "x": the callers' requests fail on it (400), as a bad canary's would.
            for path in (onnx_models.offset_add_model(folder / "v1.onnx", 0),
                         onnx_models.identity_model(folder / "v2.onnx", TensorProto.FLOAT),
                         onnx_models.offset_add_model(folder / "v3.onnx", 100)):
                assert upload(api, MODEL, path).status_code == 201
            yield api
    finally:
        srv.stop()


def _traffic(api: httpx.Client, alias: str, calls: int) -> set[int | str]:
    """The versions that answered, and the error codes of the calls that failed."""
    answered: set[int | str] = set()
    for i in range(calls):
        r = api.post(f"/v2/models/{MODEL}/versions/{alias}/infer", json=BODY,
                     headers={"FlashML-Routing-Key": f"caller-{i}"})
        answered.add(int(r.headers["FlashML-Model-Version"]) if r.status_code == 200 else r.json()["code"])
    return answered


def test_a_failing_canary_is_rolled_back_and_a_healthy_one_stays(guarded):
    api = guarded
    base = f"/api/v1/models/{MODEL}/aliases"
    r = api.put(f"{base}/healthy", json={"versions": {"1": 70, "3": 30}, "guard": GUARD})
    assert r.status_code == 200 and r.json()["guard"] == {**GUARD, "max_p99_ms": None}, r.text
    r = api.put(f"{base}/production", json={"versions": {"1": 80, "2": 20}, "guard": GUARD})
    assert r.status_code == 200, r.text
    assert _traffic(api, "healthy", 60) == {1, 3}
    failed = _traffic(api, "production", 60) - {1}  # about 12 of them go to v2 and fail there
    assert len(failed) == 1 and failed.pop() != 200
    deadline = time.monotonic() + 60
    while api.get(f"{base}").json()[1]["versions"] != {"1": 100} and time.monotonic() < deadline:
        time.sleep(0.1)
    aliases = {a["alias"]: a for a in api.get(f"{base}").json()}
    assert aliases["production"]["versions"] == {"1": 100} and aliases["production"]["guard"] is None
    assert aliases["production"]["updated_by"] == "flashml/guard"
    assert aliases["production"]["previous"] == {"versions": {"1": 80, "2": 20}, "guard": {**GUARD, "max_p99_ms": None}}
    assert aliases["healthy"]["versions"] == {"1": 70, "3": 30}  # checked in the same rounds, within its limits
    assert _traffic(api, "production", 20) == {1}
    event = next(e for e in api.get("/api/v1/audit").json() if e["action"] == "model.alias_auto_rollback")
    assert event["actor"] == "flashml/guard" and event["target"] == f"{MODEL}/production"
    detail = event["detail"]
    assert detail["canary"] == 2 and detail["stable"] == 1 and detail["crossed"] == ["max_error_rate"]
    assert detail["requests"] >= 5 and detail["errors"] == detail["requests"] and detail["error_rate"] == 1.0
    assert detail["versions"] == {"1": 100} and detail["previous"] == {"1": 80, "2": 20}
    # A person can put the canary back with one rollback (and the guard with it).
    r = api.post(f"{base}/production/rollback")
    assert r.status_code == 200 and r.json()["versions"] == {"1": 80, "2": 20} and r.json()["guard"]["window_s"] == 30
    assert api.delete(f"{base}/production").status_code == 204
    assert api.delete(f"{base}/healthy").status_code == 204


@pytest.mark.parametrize("body", [
    {"version": 1, "guard": GUARD},  # a guard needs a split
    {"versions": {"1": 90, "3": 10}, "guard": {}},
    {"versions": {"1": 90, "3": 10}, "guard": {"window_s": 30}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_error_rate": 1.5}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_error_rate": "high"}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 0}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 100, "window_s": 0}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 100, "window_s": 7200}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 100, "min_requests": 0}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 100, "min_requests": 2.5}},
    {"versions": {"1": 90, "3": 10}, "guard": {"max_p99_ms": 100, "nonsense": 1}},
    {"versions": {"1": 90, "3": 10}, "guard": [1]},
])
def test_bad_guards_are_400_and_write_nothing(guarded, body):
    r = guarded.put(f"/api/v1/models/{MODEL}/aliases/canary", json=body)
    assert r.status_code == 400 and r.json()["code"] == "bad_alias_guard", r.text
    assert guarded.get(f"/api/v1/models/{MODEL}/aliases").json() == []
