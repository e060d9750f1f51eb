"""`flashml models alias set|list|rm` against the real server, as a user would type them."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import flashml
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "cli-aliased"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


@pytest.fixture(scope="module")
def cli_model(server, admin_key, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("alias-cli")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for offset in (0, 100):
            path = onnx_models.offset_add_model(folder / f"{offset}.onnx", offset)
            assert upload(api, MODEL, path).status_code == 201
    return MODEL


def test_set_list_and_remove(server, api, admin_key, cli_model):
    conn = ("--url", server.url, "--key", admin_key)
    assert flashml("models", "alias", "list", cli_model, *conn).stdout == ""
    out = flashml("models", "alias", "set", cli_model, "production", "1", *conn).stdout
    assert out.strip() == f"{cli_model}: production\tv1"
    r = api.post(f"/v2/models/{cli_model}/infer", json=BODY)
    assert r.json()["model_version"] == "1" and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
    flashml("models", "alias", "set", cli_model, "staging", "2", *conn)
    listed = flashml("models", "alias", "list", cli_model, *conn).stdout.splitlines()  # a table since issue 26
    assert [line.split()[:2] for line in listed] == [["ALIAS", "TARGET"], ["production", "v1"], ["staging", "v2"]]
    out = flashml("models", "alias", "rm", cli_model, "production", *conn).stdout
    assert "Deleted alias production" in out
    r = api.post(f"/v2/models/{cli_model}/infer", json=BODY)
    assert r.json()["model_version"] == "2"  # the newest ready version again
    listed = flashml("models", "alias", "list", cli_model, *conn).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["ALIAS", "TARGET"], ["staging", "v2"]]
    flashml("models", "alias", "rm", cli_model, "staging", *conn)
    out = flashml("models", "alias", "set", cli_model, "canary", "1=90,2=10", *conn).stdout
    assert out.strip() == f"{cli_model}: canary\tv1 90%, v2 10%"
    assert api.get(f"/api/v1/models/{cli_model}/aliases/").json()[0]["versions"] == {"1": 90, "2": 10}
    flashml("models", "alias", "rm", cli_model, "canary", *conn)


@pytest.mark.parametrize("args,message", [
    (("set", MODEL, "production", "9"), "version_not_found"),
    (("set", MODEL, "Bad.Name", "1"), "bad_alias_name"),
    (("set", MODEL, "production", "latest"), "not a version number"),
    (("set", MODEL, "production", "1=50,2=x"), "VERSION=WEIGHT"),
    (("set", MODEL, "production", "1=50,2=40"), "sum to 100"),
    (("rm", MODEL, "no-such-alias"), "alias_not_found"),
    (("list", "no-such-model"), "model_not_found"),
])
def test_refusals_explain_and_exit_nonzero(server, admin_key, cli_model, args, message):
    proc = flashml("models", "alias", *args, "--url", server.url, "--key", admin_key, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_a_viewer_key_is_refused(server, api, cli_model):
    viewer = api.post("/api/v1/keys", json={"name": "alias cli viewer", "role": "viewer"}).json()["token"]
    proc = flashml("models", "alias", "set", cli_model, "production", "1", "--url", server.url, "--key", viewer,
                   check=False)
    assert proc.returncode != 0 and "HTTP 403" in proc.stderr and "role_forbidden" in proc.stderr
    assert flashml("models", "alias", "list", cli_model, "--url", server.url, "--key", viewer).stdout == ""


def test_rollback_guard_and_shadow_from_the_cli(server, api, admin_key, cli_model):
    conn = ("--url", server.url, "--key", admin_key)
    flashml("models", "alias", "set", cli_model, "live", "1", *conn)
    flashml("models", "alias", "set", cli_model, "live", "2", *conn)
    out = flashml("models", "alias", "rollback", cli_model, "live", *conn).stdout
    assert out.strip() == f"{cli_model}: live\tv1"
    assert api.get(f"/api/v1/models/{cli_model}/aliases").json()[0]["previous"] == {"versions": {"2": 100}}
    out = flashml("models", "alias", "set", cli_model, "live", "1=90,2=10", "--guard",
                  "max_error_rate=0.05, max_p99_ms=200, window_s=60", *conn).stdout
    assert out.strip() == (f"{cli_model}: live\tv1 90%, v2 10%\tguard max_error_rate=0.05,max_p99_ms=200,"
                           "window_s=60,min_requests=20")
    out = flashml("models", "alias", "set", cli_model, "live", "1", "--shadow", "2=25", *conn).stdout
    assert out.strip() == f"{cli_model}: live\tv1\tshadow v2 25%"
    for args, words in ((("--guard", "max_error_rate=lots"), "NAME=NUMBER"), (("--shadow", "2"), "VERSION=PERCENT"),
                        (("--guard", "max_error_rate=0.1"), "split")):
        proc = flashml("models", "alias", "set", cli_model, "live", "1", *args, *conn, check=False)
        assert proc.returncode != 0 and words in proc.stderr, proc.stderr
    flashml("models", "alias", "rm", cli_model, "live", *conn)
    proc = flashml("models", "alias", "rollback", cli_model, "live", *conn, check=False)
    assert proc.returncode != 0 and "no alias" in proc.stderr


def test_shadow_numbers_from_the_cli(server, api, admin_key, cli_model):
    conn = ("--url", server.url, "--key", admin_key)
    flashml("models", "alias", "set", cli_model, "mirror", "1", *conn)
    assert flashml("models", "alias", "shadow", cli_model, "mirror", *conn).stdout.strip() == \
        f"{cli_model}/mirror: no shadow"
    flashml("models", "alias", "set", cli_model, "mirror", "1", "--shadow", "2=100", *conn)
    for _ in range(2):
        assert api.post(f"/v2/models/{cli_model}/versions/mirror/infer", json=BODY).status_code == 200
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/models/{cli_model}/aliases/mirror/shadow").json()["compared"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    out = flashml("models", "alias", "shadow", cli_model, "mirror", *conn).stdout
    assert out.startswith(f"{cli_model}/mirror: shadow v2 100%; 2 compared, 100.0% agree, largest difference 100.0")
    flashml("models", "alias", "rm", cli_model, "mirror", *conn)
