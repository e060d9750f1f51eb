"""First run and the CLI, as a new user meets them."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml, login_token

pytestmark = pytest.mark.server


def test_first_run_setup_link_creates_the_admin_once(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        link = srv.setup_url()
        assert link and link.startswith(srv.url), srv.log()
        token = link.split("token=")[1]
        page = httpx.get(link)
        assert page.status_code == 200 and 'name="password"' in page.text
        assert httpx.get(f"{srv.url}/setup/?token=wrong").status_code == 403

        browser = httpx.Client(base_url=srv.url, timeout=60)
        form = {"token": token, "name": "root", "password": "correct horse", "password_again": "different",
                **login_token(browser)}
        assert browser.post("/setup/", data=form).status_code == 400
        assert browser.post("/setup/", data={**form, "password": "short",
                                             "password_again": "short"}).status_code == 400
        # A forged or missing token (a cross-site form has no cookie) is refused in words; nobody is created.
        forged = browser.post("/setup/", data={**form, "password_again": "correct horse", "csrf_token": "forged"})
        assert forged.status_code == 403 and "security token" in forged.text
        stranger = httpx.post(f"{srv.url}/setup/", data={**form, "password_again": "correct horse"})
        assert stranger.status_code == 403 and "security token" in stranger.text
        done = browser.post("/setup/", data={**form, "password_again": "correct horse"})
        assert done.status_code == 200, done.text
        key = done.text.split('id="api-key">')[1].split("<")[0]
        me = httpx.get(f"{srv.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
        assert me["key"]["role"] == "admin" and me["key"]["user"] == "root"

        again = browser.post("/setup/", data={**form, "password_again": "correct horse"})
        assert again.status_code == 403 and "not valid" in again.text
        (pw_hash,) = sqlite3.connect(srv.data_dir / "flashml.db").execute(
            "select password_hash from users where name='root'").fetchone()
        assert pw_hash.startswith("$argon2id$")
    finally:
        srv.stop()
    again = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        assert again.setup_url() is None  # an admin exists: no new link
    finally:
        again.stop()


def test_cli_users_and_keys(tmp_path):
    data = str(tmp_path / "data")
    out = flashml("users", "create", "alice", "--admin", "--password-stdin", "--data-dir", data, "--create",
                  input="s3cret-pass\n")  # the first command on a new data directory starts it
    assert "Created admin alice" in out.stdout
    dup = flashml("users", "create", "alice", "--admin", "--password-stdin", "--data-dir", data,
                  input="s3cret-pass\n", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    weak = flashml("users", "create", "bob", "--password-stdin", "--data-dir", data, input="123\n", check=False)
    assert weak.returncode != 0 and "at least 8" in weak.stderr

    token = flashml("keys", "create", "--name", "ci", "--role", "inference", "--model", "m1", "--data-dir",
                    data).stdout.strip()
    assert token.startswith("fml_")
    listing = flashml("keys", "list", "--data-dir", data).stdout
    assert ["1", "ci", "inference", "m1", "active"] in [line.split()[:5] for line in listing.splitlines()]  # a table
    assert token not in listing
    assert "Revoked key 1" in flashml("keys", "revoke", "1", "--data-dir", data).stdout
    assert "revoked" in flashml("keys", "list", "--data-dir", data).stdout
    bad = flashml("keys", "create", "--name", "x", "--role", "root", "--data-dir", data, check=False)
    assert bad.returncode == 2


def test_cli_models_push(server, admin_key, tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    out = flashml("models", "push", str(tmp_path / "m.onnx"), "--name", "pushed", "--url", server.url,
                  "--key", admin_key)
    assert "pushed v1 is ready" in out.stdout
    assert "Uploading m.onnx" in out.stderr  # the progress bar
    listed = flashml("models", "list", "--url", server.url, "--key", admin_key).stdout.splitlines()  # a table
    assert ["pushed", "v1", "v1:ready"] in [line.split() for line in listed]
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all" * 10)
    bad = flashml("models", "push", str(tmp_path / "junk.onnx"), "--name", "pushed", "--url", server.url,
                  "--key", admin_key, check=False)
    assert bad.returncode == 1 and "not_onnx" in bad.stderr
    noauth = flashml("models", "push", str(tmp_path / "m.onnx"), "--name", "pushed", "--url", server.url,
                     "--key", "fml_bad", check=False)
    assert noauth.returncode == 1 and "401" in noauth.stderr


def test_openapi_document_lists_the_api_and_loads_nothing_from_outside(server):
    doc = httpx.get(f"{server.url}/schema/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for p in ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer",
              "/api/v1/models/{model}/versions", "/api/v1/keys", "/api/v1/me", "/v2/health/live"):
        assert p in paths, p
    assert "requestBody" in paths["/v2/models/{model}/infer"]["post"]
    assert "requestBody" in paths["/api/v1/models/{model}/versions"]["post"]
    for text in (doc.text, httpx.get(f"{server.url}/").text):
        assert "cdn" not in text.lower() and "unpkg" not in text.lower()
