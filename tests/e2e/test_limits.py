"""Per-key rate limits and daily quotas over real HTTP, set through the API and the CLI."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import flashml
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


@pytest.fixture(scope="module")
def model(server, admin_key, tmp_path_factory):
    path = tmp_path_factory.mktemp("lim") / "add.onnx"
    onnx_models.add_model(path)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as c:
        assert upload(c, "limited", path).status_code == 201
    return "limited"


def infer(server, token: str, model: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=BODY,
                      headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_rate_limit_quota_and_patch(server, api, model):
    # 0.01/s: no token comes back during the test, so nothing here depends on timing.
    created = api.post("/api/v1/keys", json={"name": "slow", "role": "inference", "rate_limit_per_s": 0.01,
                                             "burst": 2})
    assert created.status_code == 201, created.text
    key = created.json()
    assert (key["rate_limit_per_s"], key["burst"], key["daily_quota"], key["weight"]) == (0.01, 2, None, 1)
    token, ident = key["token"], key["id"]

    assert infer(server, token, model).status_code == 200
    assert infer(server, token, model).status_code == 200
    r = infer(server, token, model)
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited" and r.json()["error"]
    assert int(r.headers["retry-after"]) >= 1

    # No rate limit but a daily quota of 2, already used: quota_exceeded until next UTC midnight.
    r = api.patch(f"/api/v1/keys/{ident}", json={"rate_limit_per_s": None, "daily_quota": 2})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limit_per_s"] is None and r.json()["daily_quota"] == 2 and r.json()["burst"] == 2
    assert r.json()["used_today"] == 2
    r = infer(server, token, model)
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 86400

    # Clearing the quota lets the key through at once.
    r = api.patch(f"/api/v1/keys/{ident}", json={"daily_quota": None})
    assert r.status_code == 200 and r.json()["daily_quota"] is None
    assert infer(server, token, model).status_code == 200

    listed = {k["id"]: k for k in api.get("/api/v1/keys").json()}
    assert listed[ident]["used_today"] == 3 and listed[ident]["burst"] == 2
    assert api.get(f"/api/v1/keys/{ident}").json()["used_today"] == 3
    me = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["key"]["daily_quota"] is None and me["key"]["weight"] == 1
    actions = [e["action"] for e in api.get("/api/v1/audit").json()]
    assert "key.limits" in actions


def test_quota_set_at_creation(server, api, model):
    token = api.post("/api/v1/keys", json={"name": "two-a-day", "role": "inference", "daily_quota": 2}).json()["token"]
    assert infer(server, token, model).status_code == 200
    assert infer(server, token, model).status_code == 200
    r = infer(server, token, model)
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded" and r.headers["retry-after"]


@pytest.mark.parametrize("body", [{"rate_limit_per_s": 0}, {"rate_limit_per_s": -1}, {"burst": 0},
                                  {"daily_quota": 0}, {"weight": 0}, {"weight": 1000}, {},
                                  # past SQLite's 64-bit integers: these were a 500 and nothing said why
                                  {"burst": 10**23}, {"daily_quota": 10**23}, {"rate_limit_per_s": 1e300}])
def test_bad_limits_are_400(api, body):
    ident = api.post("/api/v1/keys", json={"name": "bad-limits", "role": "inference"}).json()["id"]
    before = api.get(f"/api/v1/keys/{ident}").json()
    r = api.patch(f"/api/v1/keys/{ident}", json=body)
    assert r.status_code == 400 and r.json()["code"] == "bad_limits", r.text
    assert api.get(f"/api/v1/keys/{ident}").json() == before


def test_bad_limits_on_create_unknown_key_and_wrong_types(api):
    r = api.post("/api/v1/keys", json={"name": "x", "role": "inference", "burst": 0})
    assert r.status_code == 400 and r.json()["code"] == "bad_limits"
    assert api.patch("/api/v1/keys/999999", json={"burst": 2}).status_code == 404
    assert api.patch("/api/v1/keys/1", json={"burst": "lots"}).status_code == 400


def test_only_admins_change_limits(server, api):
    created = api.post("/api/v1/keys", json={"name": "not-admin", "role": "inference"}).json()
    r = httpx.patch(f"{server.url}/api/v1/keys/{created['id']}", json={"burst": 5},
                    headers={"Authorization": f"Bearer {created['token']}"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"


def test_limits_are_in_the_openapi_document(server):
    doc = httpx.get(f"{server.url}/schema/openapi.json").json()
    assert "patch" in doc["paths"]["/api/v1/keys/{key_id}"]
    schemas = doc["components"]["schemas"]
    limits = next(s for name, s in schemas.items() if name.endswith("KeyLimits"))
    assert set(limits["properties"]) == {"rate_limit_per_s", "burst", "daily_quota", "weight"}


def test_cli_sets_limits(server, api):
    token = server.create_key("cli-limited", "inference")
    ident = next(k["id"] for k in api.get("/api/v1/keys").json() if k["name"] == "cli-limited")
    out = flashml("keys", "limit", str(ident), "--rate-limit", "0.5", "--burst", "4", "--daily-quota", "100",
                  "--weight", "3", "--data-dir", str(server.data_dir)).stdout
    assert f"Key {ident}" in out and "0.5/s burst 4" in out
    # The API reads the database, so it shows the change at once (the server's key cache applies it within 10 s).
    record = api.get(f"/api/v1/keys/{ident}").json()
    assert (record["rate_limit_per_s"], record["burst"], record["daily_quota"], record["weight"]) == (0.5, 4, 100, 3)
    flashml("keys", "limit", str(ident), "--rate-limit", "none", "--daily-quota", "none",
            "--data-dir", str(server.data_dir))
    record = api.get(f"/api/v1/keys/{ident}").json()
    assert record["rate_limit_per_s"] is None and record["daily_quota"] is None and record["burst"] == 4
    bad = flashml("keys", "limit", str(ident), "--burst", "0", "--data-dir", str(server.data_dir), check=False)
    assert bad.returncode != 0 and "burst" in bad.stderr
    assert token


def test_cli_create_with_limits(server, api):
    flashml("keys", "create", "--name", "cli-made-limited", "--role", "inference", "--rate-limit", "2",
            "--daily-quota", "50", "--data-dir", str(server.data_dir))
    record = next(k for k in api.get("/api/v1/keys").json() if k["name"] == "cli-made-limited")
    assert (record["rate_limit_per_s"], record["burst"], record["daily_quota"], record["weight"]) == (2.0, None, 50, 1)
    listing = flashml("keys", "list", "--data-dir", str(server.data_dir)).stdout
    assert "2/s burst 2" in listing and "0/50 today" in listing
