"""Memory-aware loading on a real server whose budget fits one version: least recently used versions unload,
load again on demand, pinned ones stay, and an alias moves only to a loaded, warm version."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "budgeted"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
ANSWER = {1: [2, 3, 4, 5], 2: [102, 103, 104, 105], 3: [202, 203, 204, 205]}


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("memory")
    # A budget of one byte: whatever was loaded last (and what is pinned) is all that stays loaded.
    srv = ServerProcess(folder / "data", *SERVER_FLAGS, "--memory-budget", "1", "--load-timeout-s", "60").start()
    key = srv.create_key()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
            for number in (1, 2, 3):
                path = onnx_models.offset_add_model(folder / f"v{number}.onnx", 100 * (number - 1))
                assert upload(api, MODEL, path).status_code == 201
            yield api
    finally:
        srv.stop()


def _loaded(api: httpx.Client) -> set[int]:
    info = api.get(f"/api/v1/models/{MODEL}").json()
    for v in info["versions"]:
        assert v["state"] == "ready" and v["unloaded_for_memory"] is (not v["loaded"])
    return {v["version"] for v in info["versions"] if v["loaded"]}


def _infer(api: httpx.Client, number: int) -> None:
    r = api.post(f"/v2/models/{MODEL}/versions/{number}/infer", json=BODY)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == ANSWER[number], r.text


def test_least_recently_used_versions_unload_and_load_again_on_demand(budgeted):
    api = budgeted
    assert _loaded(api) == {3}
    info = api.get(f"/api/v1/models/{MODEL}").json()
    device = info["memory"]["devices"][0]
    assert device["budget_bytes"] == 1 and device["used_bytes"] > 0 and info["memory"]["unloaded"] == 2
    v3 = next(v for v in info["versions"] if v["version"] == 3)
    assert v3["memory_bytes"] > 0 and isinstance(v3["host_memory_bytes"], int)
    assert v3["gpu_memory_bytes"] is None  # on the CPU
    _infer(api, 1)  # waits while v1 loads again; v3 makes room
    assert _loaded(api) == {1}
    _infer(api, 2)
    _infer(api, 3)
    assert _loaded(api) == {3}


def test_a_pinned_version_stays_loaded(budgeted):
    api = budgeted
    r = api.patch(f"/api/v1/models/{MODEL}/versions/2", json={"pinned": True})
    assert r.status_code == 200 and r.json()["pinned"] is True and r.json()["loaded"] is True, r.text
    _infer(api, 1)
    _infer(api, 3)
    assert _loaded(api) == {2, 3}
    assert api.patch(f"/api/v1/models/{MODEL}/versions/2", json={"pinned": False}).json()["pinned"] is False
    _infer(api, 1)  # v2 is now the least recently used: it goes
    assert _loaded(api) == {1}
    events = [(e["action"], e["target"]) for e in api.get("/api/v1/audit").json()]
    assert ("version.pin", f"{MODEL}/v2") in events and ("version.unpin", f"{MODEL}/v2") in events


def test_an_alias_moves_only_to_a_loaded_warm_version(budgeted):
    api = budgeted
    assert 3 not in _loaded(api)
    r = api.put(f"/api/v1/models/{MODEL}/aliases/production", json={"version": 3})
    assert r.status_code == 200
    assert 3 in _loaded(api)  # loaded (and warmed) before the alias answered
    r = api.post(f"/v2/models/{MODEL}/infer", json=BODY)
    assert r.json()["outputs"][0]["data"] == ANSWER[3]
    assert api.delete(f"/api/v1/models/{MODEL}/aliases/production").status_code == 204


@pytest.mark.parametrize("path,body,status,code", [
    ("versions/1", {}, 400, "bad_version_patch"),
    ("versions/1", {"pinned": "yes"}, 400, "bad_version_patch"),
    ("versions/1", {"pinned": True, "other": 1}, 400, "bad_version_patch"),
    ("versions/9", {"pinned": True}, 404, "version_not_found"),
])
def test_bad_pins_are_refused(budgeted, path, body, status, code):
    r = budgeted.patch(f"/api/v1/models/{MODEL}/{path}", json=body)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert not any(v["pinned"] for v in budgeted.get(f"/api/v1/models/{MODEL}").json()["versions"])


def test_an_archived_version_cannot_be_pinned_and_does_not_load_on_demand(budgeted):
    api = budgeted
    assert api.post(f"/api/v1/models/{MODEL}/versions/2/archive").json()["state"] == "archived"
    r = api.patch(f"/api/v1/models/{MODEL}/versions/2", json={"pinned": True})
    assert r.status_code == 409 and r.json()["code"] == "bad_state"
    r = api.post(f"/v2/models/{MODEL}/versions/2/infer", json=BODY)
    assert r.status_code == 409 and r.json()["code"] == "version_not_ready"
    assert api.post(f"/api/v1/models/{MODEL}/versions/2/restore").json()["state"] == "ready"
    _infer(api, 2)


def test_pin_from_the_cli(budgeted):
    from tests.helpers.server_process import flashml

    api = budgeted
    url = str(api.base_url).rstrip("/")
    conn = ("--url", url, "--key", api.headers["Authorization"].split()[1])
    assert flashml("models", "pin", MODEL, "1", *conn).stdout.strip() == f"{MODEL} v1: pinned, loaded"
    assert flashml("models", "pin", MODEL, "1", "--off", *conn).stdout.strip() == f"{MODEL} v1: not pinned, loaded"
    proc = flashml("models", "pin", MODEL, "9", *conn, check=False)
    assert proc.returncode != 0 and "no version 9" in proc.stderr
