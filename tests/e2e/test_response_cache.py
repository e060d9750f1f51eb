"""The per-model response cache over real HTTP: off by default, hits for identical inputs, bounded, counted."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "cached"


def body(first: float, binary: bool = False) -> dict:
    out = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [first, 2, 3, 4]},
                      {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
    if binary:
        out["outputs"] = [{"name": "sum", "parameters": {"binary_data": False}}]
    return out


@pytest.fixture(scope="module")
def cached(server, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("cache")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for offset in (0, 100):
            path = onnx_models.offset_add_model(folder / f"{offset}.onnx", offset)
            assert upload(api, MODEL, path).status_code == 201
    return MODEL


def _call(api: httpx.Client, payload: dict, version: str = "1") -> tuple[str | None, list]:
    r = api.post(f"/v2/models/{MODEL}/versions/{version}/infer", json=payload)
    assert r.status_code == 200, r.text
    return r.headers.get("FlashML-Cache"), r.json()["outputs"][0]["data"]


def test_off_by_default_then_hits_for_identical_inputs(api, cached):
    view = api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]
    assert view["enabled"] is False and view["hits"] == 0 and view["entries"] == 0
    assert _call(api, body(1)) == (None, [2, 3, 4, 5])

    r = api.patch(f"/api/v1/models/{MODEL}", json={"response_cache": {"enabled": True, "max_entries": 2}})
    assert r.status_code == 200, r.text
    assert r.json() | {"max_bytes": 0} == {"enabled": True, "max_entries": 2, "max_bytes": 0, "entries": 0,
                                           "bytes": 0, "hits": 0, "misses": 0, "hit_rate": None}
    assert _call(api, body(1)) == ("miss", [2, 3, 4, 5])
    assert _call(api, body(1)) == ("hit", [2, 3, 4, 5])
    assert _call(api, body(1, binary=True)) == ("hit", [2, 3, 4, 5])  # the encoding is not part of the key
    assert _call(api, body(1), version="2") == ("miss", [102, 103, 104, 105])  # another version, another key
    assert _call(api, body(7)) == ("miss", [8, 3, 4, 5])  # a third answer: the least recently used goes
    assert _call(api, body(1)) == ("miss", [2, 3, 4, 5])
    view = api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]
    assert (view["hits"], view["misses"], view["entries"], view["hit_rate"]) == (2, 4, 2, 0.3333)
    assert view["bytes"] == 2 * 16

    r = api.patch(f"/api/v1/models/{MODEL}", json={"response_cache": {"enabled": False}})
    assert r.json()["enabled"] is False and r.json()["entries"] == 0
    assert _call(api, body(1)) == (None, [2, 3, 4, 5])
    events = [(e["action"], e["detail"]) for e in api.get("/api/v1/audit").json() if e["target"] == MODEL]
    assert ("model.response_cache", {"enabled": True, "max_entries": 2}) in events


@pytest.mark.parametrize("payload,code", [
    ({}, "bad_model_patch"),
    ({"response_cache": True}, "bad_model_patch"),
    ({"response_cache": {"enabled": True}, "name": "x"}, "bad_model_patch"),
    ({"response_cache": {}}, "bad_response_cache"),
    ({"response_cache": {"enabled": "yes"}}, "bad_response_cache"),
    ({"response_cache": {"enabled": True, "max_entries": 0}}, "bad_response_cache"),
    ({"response_cache": {"enabled": True, "max_entries": 10**9}}, "bad_response_cache"),
    ({"response_cache": {"enabled": True, "max_entries": 1.5}}, "bad_response_cache"),
    ({"response_cache": {"enabled": True, "size": 3}}, "bad_response_cache"),
])
def test_bad_cache_settings_are_400_and_change_nothing(api, cached, payload, code):
    before = api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]
    r = api.patch(f"/api/v1/models/{MODEL}", json=payload)
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    assert api.get(f"/api/v1/models/{MODEL}").json()["response_cache"] == before


def test_unknown_model_and_roles(server, api, cached):
    r = api.patch("/api/v1/models/no-such-model", json={"response_cache": {"enabled": True}})
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"
    viewer = api.post("/api/v1/keys", json={"name": "cache viewer", "role": "viewer"}).json()["token"]
    r = httpx.patch(f"{server.url}/api/v1/models/{MODEL}", json={"response_cache": {"enabled": True}},
                    headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"


def test_the_cli_shows_and_sets_the_cache(server, admin_key, cached):
    from tests.helpers.server_process import flashml

    conn = ("--url", server.url, "--key", admin_key)
    assert flashml("models", "cache", MODEL, *conn).stdout.startswith(f"{MODEL}: response cache off")
    out = flashml("models", "cache", MODEL, "--on", "--max-entries", "5", *conn).stdout
    assert out.strip() == f"{MODEL}: response cache on, up to 5 answers; 0 kept, 0 hits, 0 misses"
    proc = flashml("models", "cache", MODEL, "--max-entries", "0", *conn, check=False)
    assert proc.returncode != 0 and "max_entries" in proc.stderr
    assert "off" in flashml("models", "cache", MODEL, "--off", *conn).stdout
