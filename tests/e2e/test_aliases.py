"""Aliases over real HTTP: set, list, delete; V2 calls by alias and without a version; every refusal."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "aliased"
A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}
BODY = {"inputs": [A, B]}
ANSWER = {1: [2, 3, 4, 5], 2: [102, 103, 104, 105]}  # v1 adds, v2 adds 100 more; v3 failed validation


@pytest.fixture(scope="module")
def aliased(server, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("aliases")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        assert upload(api, MODEL, onnx_models.offset_add_model(folder / "v1.onnx", 0)).status_code == 201
        assert upload(api, MODEL, onnx_models.offset_add_model(folder / "v2.onnx", 100)).status_code == 201
        assert upload(api, MODEL, onnx_models.custom_domain_model(folder / "v3.onnx")).status_code == 422
    return MODEL


def _key(api: httpx.Client, role: str) -> str:
    created = api.post("/api/v1/keys", json={"name": f"aliases {role}", "role": role})
    assert created.status_code == 201, created.text
    return created.json()["token"]


def _answered(r: httpx.Response) -> int:
    """The version that answered, checked three ways: header, model_version, and the numbers themselves."""
    assert r.status_code == 200, r.text
    number = int(r.headers["FlashML-Model-Version"])
    assert r.json()["model_version"] == str(number)
    assert r.json()["outputs"][0]["data"] == ANSWER[number]
    return number


def test_a_call_without_version_goes_to_production_else_the_newest(api, aliased):
    assert _answered(api.post(f"/v2/models/{aliased}/infer", json=BODY)) == 2  # newest ready
    r = api.put(f"/api/v1/models/{aliased}/aliases/production", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": 0} == {"model": aliased, "alias": "production", "version": 1,
                                            "versions": {"1": 100}, "guard": None, "shadow": None,
                                            "previous": None, "updated_by": "cli/key:e2e admin",
                                            "updated_at": 0}
    assert _answered(api.post(f"/v2/models/{aliased}/infer", json=BODY)) == 1
    ready = api.get(f"/v2/models/{aliased}/ready")
    assert ready.json()["version"] == "1" and ready.headers["FlashML-Model-Version"] == "1"
    meta = api.get(f"/v2/models/{aliased}")
    assert meta.status_code == 200 and meta.headers["FlashML-Model-Version"] == "1"
    # A number still names a version.
    assert _answered(api.post(f"/v2/models/{aliased}/versions/2/infer", json=BODY)) == 2
    # The model's record shows the aliases, also per version.
    info = api.get(f"/api/v1/models/{aliased}").json()
    assert [a["alias"] for a in info["aliases"]] == ["production"]
    assert {v["version"]: v["aliases"] for v in info["versions"]} == {1: ["production"], 2: [], 3: []}

    assert api.delete(f"/api/v1/models/{aliased}/aliases/production").status_code == 204
    assert _answered(api.post(f"/v2/models/{aliased}/infer", json=BODY)) == 2
    events = [(e["action"], e["target"], e["detail"]) for e in api.get("/api/v1/audit").json()]
    assert ("model.alias_delete", f"{aliased}/production", {"previous": {"1": 100}}) in events
    assert ("model.alias_set", f"{aliased}/production", {"versions": {"1": 100}, "previous": None}) in events


def test_the_v2_version_field_takes_an_alias(api, aliased):
    assert api.put(f"/api/v1/models/{aliased}/aliases/staging", json={"version": 1}).status_code == 200
    assert _answered(api.post(f"/v2/models/{aliased}/versions/staging/infer", json=BODY)) == 1
    moved = api.put(f"/api/v1/models/{aliased}/aliases/staging", json={"version": 2})
    assert moved.status_code == 200 and moved.json()["version"] == 2
    assert _answered(api.post(f"/v2/models/{aliased}/versions/staging/infer", json=BODY)) == 2
    ready = api.get(f"/v2/models/{aliased}/versions/staging/ready")
    assert ready.json() == {"name": aliased, "version": "2", "ready": True}
    assert ready.headers["FlashML-Model-Version"] == "2"
    meta = api.get(f"/v2/models/{aliased}/versions/staging")
    assert meta.json()["name"] == aliased and meta.headers["FlashML-Model-Version"] == "2"
    listed = api.get(f"/api/v1/models/{aliased}/aliases").json()
    assert [(a["alias"], a["version"]) for a in listed] == [("staging", 2)]
    assert api.delete(f"/api/v1/models/{aliased}/aliases/staging").status_code == 204
    assert api.get(f"/api/v1/models/{aliased}/aliases").json() == []


@pytest.mark.parametrize("path,code", [
    (f"/v2/models/{MODEL}/versions/no-such-alias/infer", "version_not_found"),
    (f"/v2/models/{MODEL}/versions/no-such-alias/ready", "version_not_found"),
    (f"/v2/models/{MODEL}/versions/no-such-alias", "version_not_found"),
    ("/v2/models/no-such-model/versions/production/infer", "model_not_found"),
])
def test_an_unknown_alias_in_v2_is_404(api, aliased, path, code):
    r = api.post(path, json=BODY) if path.endswith("infer") else api.get(path)
    assert r.status_code == 404 and r.json()["code"] == code
    if code == "version_not_found":
        assert "alias" in r.json()["error"] and "no-such-alias" in r.json()["error"]


@pytest.mark.parametrize("alias", ["Production", "123", "-canary", "a" * 65, "has space", "dot.ted", "ünï"])
def test_bad_alias_names_are_400(api, aliased, alias):
    r = api.put(f"/api/v1/models/{aliased}/aliases/{alias}", json={"version": 1})
    assert r.status_code == 400 and r.json()["code"] == "bad_alias_name", r.text
    assert api.get(f"/api/v1/models/{aliased}/aliases").json() == []


@pytest.mark.parametrize("body,status,code", [
    ({}, 400, "bad_alias_body"),
    ({"version": "1"}, 400, "bad_alias_body"),
    ({"version": 0}, 400, "bad_alias_body"),
    ({"version": True}, 400, "bad_alias_body"),
    ({"version": 1, "versions": {"1": 100}}, 400, "bad_alias_body"),
    ({"version": 1, "extra": 1}, 400, "bad_alias_body"),
    ({"versions": {}}, 400, "bad_alias_body"),
    ({"versions": {"one": 100}}, 400, "bad_alias_body"),
    ({"versions": {"1": 50}}, 400, "bad_alias_weights"),
    ({"versions": {"1": 0, "2": 100}}, 400, "bad_alias_weights"),
    ({"versions": {"1": 50.5, "2": 49.5}}, 400, "bad_alias_weights"),
    ({"version": 99}, 404, "version_not_found"),
    ({"versions": {"1": 50, "99": 50}}, 404, "version_not_found"),
    ({"version": 3}, 409, "version_not_ready"),  # v3 failed validation
    ({"versions": {"1": 90, "3": 10}}, 409, "version_not_ready"),
])
def test_bad_alias_bodies_are_refused_and_write_nothing(api, aliased, body, status, code):
    r = api.put(f"/api/v1/models/{aliased}/aliases/canary", json=body)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert r.json()["error"]
    assert api.get(f"/api/v1/models/{aliased}/aliases").json() == []


def test_malformed_json_unknown_model_and_unknown_alias(api, aliased):
    r = api.put(f"/api/v1/models/{aliased}/aliases/canary", content=b"{nope",
                headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed_request"
    r = api.put(f"/api/v1/models/{aliased}/aliases/canary", json=[1])
    assert r.status_code == 400 and r.json()["code"] == "malformed_request"
    for r in (api.put("/api/v1/models/no-such-model/aliases/canary", json={"version": 1}),
              api.get("/api/v1/models/no-such-model/aliases"),
              api.delete("/api/v1/models/no-such-model/aliases/canary")):
        assert r.status_code == 404 and r.json()["code"] == "model_not_found"
    r = api.delete(f"/api/v1/models/{aliased}/aliases/canary")
    assert r.status_code == 404 and r.json()["code"] == "alias_not_found" and "canary" in r.json()["error"]


def test_roles(server, api, aliased):
    viewer, inference, maintainer = (_key(api, role) for role in ("viewer", "inference", "maintainer"))
    assert api.put(f"/api/v1/models/{aliased}/aliases/beta", json={"version": 1}).status_code == 200
    with httpx.Client(base_url=server.url, timeout=30) as c:
        def as_(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        assert c.get(f"/api/v1/models/{aliased}/aliases", headers=as_(viewer)).status_code == 200
        for token in (viewer, inference):
            for r in (c.put(f"/api/v1/models/{aliased}/aliases/beta", json={"version": 2}, headers=as_(token)),
                      c.delete(f"/api/v1/models/{aliased}/aliases/beta", headers=as_(token))):
                assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
        r = c.get(f"/api/v1/models/{aliased}/aliases", headers=as_(inference))
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
        # An inference key calls by alias all the same.
        r = c.post(f"/v2/models/{aliased}/versions/beta/infer", json=BODY, headers=as_(inference))
        assert _answered(r) == 1
        r = c.put(f"/api/v1/models/{aliased}/aliases/beta", json={"version": 2}, headers=as_(maintainer))
        assert r.status_code == 200 and r.json()["updated_by"].endswith("/key:aliases maintainer")
        assert c.delete(f"/api/v1/models/{aliased}/aliases/beta", headers=as_(maintainer)).status_code == 204


def test_a_version_an_alias_points_at_is_neither_archived_nor_deleted(api, aliased):
    assert api.put(f"/api/v1/models/{aliased}/aliases/production", json={"version": 1}).status_code == 200
    assert api.put(f"/api/v1/models/{aliased}/aliases/stable", json={"version": 1}).status_code == 200
    for r in (api.post(f"/api/v1/models/{aliased}/versions/1/archive"),
              api.delete(f"/api/v1/models/{aliased}/versions/1", params={"force": "true"})):
        assert r.status_code == 409 and r.json()["code"] == "version_aliased"
        assert r.json()["details"] == {"aliases": ["production", "stable"]}
        assert "production, stable" in r.json()["error"]
    assert api.get(f"/api/v1/models/{aliased}/versions/1").json()["state"] == "ready"
    assert _answered(api.post(f"/v2/models/{aliased}/infer", json=BODY)) == 1
    # Move the aliases away first; then the version archives and restores as usual.
    assert api.put(f"/api/v1/models/{aliased}/aliases/production", json={"version": 2}).status_code == 200
    assert api.delete(f"/api/v1/models/{aliased}/aliases/stable").status_code == 204
    assert api.post(f"/api/v1/models/{aliased}/versions/1/archive").json()["state"] == "archived"
    r = api.put(f"/api/v1/models/{aliased}/aliases/stable", json={"version": 1})
    assert r.status_code == 409 and r.json()["code"] == "version_not_ready" and "archived" in r.json()["error"]
    assert api.post(f"/api/v1/models/{aliased}/versions/1/restore").json()["state"] == "ready"
    assert _answered(api.post(f"/v2/models/{aliased}/infer", json=BODY)) == 2
    assert api.delete(f"/api/v1/models/{aliased}/aliases/production").status_code == 204


def _split(api: httpx.Client, path: str, keys: list[str]) -> dict[str, int]:
    """Which version answered each routing key (sent as the FlashML-Routing-Key header)."""
    return {k: _answered(api.post(path, json=BODY, headers={"FlashML-Routing-Key": k})) for k in keys}


def test_a_split_alias_shares_traffic_stickily_and_changes_live(api, aliased):
    keys = [f"caller-{i}" for i in range(100)]  # fixed routing keys: the hash decides, no randomness
    r = api.put(f"/api/v1/models/{aliased}/aliases/canary", json={"versions": {"1": 50, "2": 50}})
    assert r.status_code == 200 and r.json()["version"] is None and r.json()["versions"] == {"1": 50, "2": 50}
    listed = api.get(f"/api/v1/models/{aliased}/aliases").json()
    assert [(a["alias"], a["version"], a["versions"]) for a in listed] == [("canary", None, {"1": 50, "2": 50})]
    path = f"/v2/models/{aliased}/versions/canary/infer"
    first = _split(api, path, keys)
    assert 35 <= sum(v == 2 for v in first.values()) <= 65
    assert _split(api, path, keys[:20]) == {k: first[k] for k in keys[:20]}  # sticky per routing key
    # Without the header, the API key's id is the routing key: one key always lands on the same version.
    assert len({_answered(api.post(path, json=BODY)) for _ in range(5)}) == 1
    ready = api.get(f"/v2/models/{aliased}/versions/canary/ready", headers={"FlashML-Routing-Key": keys[0]})
    assert ready.json()["version"] == str(first[keys[0]]) == ready.headers["FlashML-Model-Version"]

    # Changed live: 10 % to v2 now, and the callers on v2 are ones that were there before.
    assert api.put(f"/api/v1/models/{aliased}/aliases/canary", json={"versions": {"1": 90, "2": 10}}).status_code == 200
    second = _split(api, path, keys)
    on_v2 = [k for k, v in second.items() if v == 2]
    assert 3 <= len(on_v2) <= 20 and all(first[k] == 2 for k in on_v2)
    # Neither side of a split can be archived meanwhile.
    r = api.post(f"/api/v1/models/{aliased}/versions/2/archive")
    assert r.status_code == 409 and r.json()["details"] == {"aliases": ["canary"]}

    # A split production alias routes the calls that name no version.
    assert api.put(f"/api/v1/models/{aliased}/aliases/production",
                   json={"versions": {"1": 90, "2": 10}}).status_code == 200
    assert _split(api, f"/v2/models/{aliased}/infer", keys) == second
    for alias in ("canary", "production"):
        assert api.delete(f"/api/v1/models/{aliased}/aliases/{alias}").status_code == 204


def test_aliases_survive_a_restart_and_go_with_their_model(tmp_path):
    onnx_models.offset_add_model(tmp_path / "v1.onnx", 0)
    onnx_models.offset_add_model(tmp_path / "v2.onnx", 100)
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    key = srv.create_key()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            for name in ("v1", "v2"):
                assert upload(c, "kept", tmp_path / f"{name}.onnx").status_code == 201
            assert c.put("/api/v1/models/kept/aliases/production", json={"version": 1}).status_code == 200
    finally:
        srv.stop()
    again = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        with httpx.Client(base_url=again.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            assert _answered(c.post("/v2/models/kept/infer", json=BODY)) == 1  # loaded at start-up
            # Deleting the model deletes its aliases: a new model of that name starts with none.
            assert c.delete("/api/v1/models/kept", params={"force": "true"}).status_code == 204
            assert upload(c, "kept", tmp_path / "v2.onnx").status_code == 201
            assert c.get("/api/v1/models/kept/aliases").json() == []
            r = c.post("/v2/models/kept/versions/production/infer", json=BODY)
            assert r.status_code == 404 and r.json()["code"] == "version_not_found"
    finally:
        again.stop()


def test_aliases_are_in_the_openapi_document(api):
    paths = api.get("/schema/openapi.json").json()["paths"]
    one = paths["/api/v1/models/{model}/aliases/{alias}"]
    assert {"put", "delete"} <= set(one) and "get" in paths["/api/v1/models/{model}/aliases"]
    document = api.get("/schema/openapi.json").json()
    ref = one["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"version", "versions", "guard", "shadow"} <= set(schema["properties"])
    assert "post" in paths["/api/v1/models/{model}/aliases/{alias}/rollback"]
    assert "get" in paths["/api/v1/models/{model}/aliases/{alias}/shadow"]


def test_an_error_after_the_version_was_picked_says_which_version_answered(api, aliased):
    assert api.put(f"/api/v1/models/{aliased}/aliases/staging", json={"version": 1}).status_code == 200
    bad_shape = {"inputs": [A, B | {"shape": [1, 3], "data": [1, 1, 1]}]}
    r = api.post(f"/v2/models/{aliased}/versions/staging/infer", json=bad_shape)
    assert r.status_code == 400 and r.json()["code"] == "tensor_shape", r.text
    assert r.headers["FlashML-Model-Version"] == "1"
    r = api.post(f"/v2/models/{aliased}/versions/staging/infer", content=b"{not json")
    assert r.status_code == 400 and r.headers["FlashML-Model-Version"] == "1"
    # Before a version is picked there is none to name.
    r = api.post(f"/v2/models/{aliased}/versions/nosuch/infer", json=BODY)
    assert r.status_code == 404 and "FlashML-Model-Version" not in r.headers
    assert api.delete(f"/api/v1/models/{aliased}/aliases/staging").status_code == 204
