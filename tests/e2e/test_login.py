"""Console sign-in and roles over HTTP against the real server: cookie, CSRF, rate limit, role checks."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import flashml, login_token

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery"


def _user(server, name: str, role: str) -> str:
    flashml("users", "create", name, "--role", role, "--password-stdin", "--data-dir", str(server.data_dir),
            input=f"{PASSWORD}\n")
    return name


def _sign_in(client: httpx.Client, name: str) -> str:
    """Sign ``client`` in as ``name``; the session's CSRF token."""
    r = client.post("/login", data={**login_token(client), "name": name, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    me = client.get("/api/v1/me").json()
    assert me["user"]["name"] == name
    return me["csrf_token"]


@pytest.fixture(scope="module")
def users(server):
    return {role: _user(server, f"login-{role}", role) for role in ("admin", "maintainer", "viewer")}


def test_login_page_and_home_redirect(server):
    r = httpx.get(f"{server.url}/")
    assert r.status_code in (302, 303) and r.headers["location"] == "/login"
    page = httpx.get(f"{server.url}/login")
    assert page.status_code == 200
    assert 'for="name"' in page.text and 'for="password"' in page.text and "autofocus" in page.text


def test_login_sets_a_strict_httponly_cookie_and_logout_needs_csrf(server, users):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        bad = client.post("/login", data={**login_token(client),
                                          "name": users["viewer"], "password": "not the password"})
        assert bad.status_code == 401 and "Wrong user name or password" in bad.text
        assert "flashml_session" not in client.cookies

        r = client.post("/login", data={**login_token(client),
                                        "name": users["viewer"], "password": PASSWORD, "next": "/"})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        lowered = cookie.lower()
        assert cookie.startswith("flashml_session=") and "httponly" in lowered and "samesite=strict" in lowered
        assert "path=/" in lowered and "secure" not in lowered  # plain http here

        home = client.get("/")
        assert home.status_code == 200 and "is running" in home.text
        assert client.get("/login").status_code in (302, 303)  # signed in already
        csrf = client.get("/api/v1/me").json()["csrf_token"]

        for data in ({}, {"csrf_token": "forged"}):
            r = client.post("/logout", data=data)
            assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
        r = client.post("/logout", headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
        assert client.get("/").status_code == 200  # still signed in

        r = client.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        client.cookies.clear()
        client.cookies.set("flashml_session", cookie.split(";")[0].split("=", 1)[1])  # the old cookie
        assert client.get("/").status_code in (302, 303)
        assert client.get("/api/v1/models").json()["code"] == "session_expired"


def test_next_never_leaves_the_site(server, users):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for target, expected in (("/schema/openapi.json", "/schema/openapi.json"),
                                 ("https://evil.example/", "/"), ("//evil.example", "/")):
            r = client.post("/login", data={**login_token(client),
                                            "name": users["viewer"], "password": PASSWORD, "next": target})
            assert r.status_code == 303 and r.headers["location"] == expected
        page = httpx.get(f"{server.url}/login", params={"next": "https://evil.example/"})
        assert "evil.example" not in page.text


def test_viewer_session_reads_but_changes_nothing(server, users, api, tmp_path):
    onnx_models.add_model(tmp_path / "ok.onnx")
    assert api.post("/api/v1/models/login-kept/versions", content=(tmp_path / "ok.onnx").read_bytes()
                    ).status_code == 201
    with httpx.Client(base_url=server.url, timeout=60) as client:
        csrf = _sign_in(client, users["viewer"])
        r = client.get("/api/v1/models")
        assert r.status_code == 200 and "login-kept" in {m["name"] for m in r.json()}
        assert client.get("/api/v1/models/login-kept/versions/1/config").status_code == 200
        headers = {"X-CSRF-Token": csrf}
        r = client.delete("/api/v1/models/login-kept", headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
        assert r.json()["details"]["required_role"] == "maintainer"
        r = client.post("/api/v1/keys", json={"name": "v", "role": "inference"}, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
        assert client.get("/api/v1/keys").json()["code"] == "role_forbidden"  # no key listings for viewers
        assert all(e["action"].startswith(("model.", "version.")) for e in client.get("/api/v1/audit").json())
    assert api.get("/api/v1/models/login-kept").status_code == 200


def test_session_writes_need_the_csrf_token(server, users, tmp_path):
    onnx_models.add_model(tmp_path / "ok.onnx")
    body = (tmp_path / "ok.onnx").read_bytes()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        csrf = _sign_in(client, users["maintainer"])
        r = client.post("/api/v1/models/login-session/versions", content=body)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
        r = client.post("/api/v1/models/login-session/versions", content=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        assert r.json()["created_by"] == f"{users['maintainer']}/console"


def test_maintainer_key_uploads_but_makes_no_admin_key(server, api, tmp_path):
    onnx_models.add_model(tmp_path / "ok.onnx")
    key = server.create_key("login maintainer", "maintainer")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as m:
        r = m.post("/api/v1/models/login-maint/versions", content=(tmp_path / "ok.onnx").read_bytes())
        assert r.status_code == 201, r.text
        r = m.post("/api/v1/keys", json={"name": "too strong", "role": "admin"})
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
        assert r.json()["details"]["required_role"] == "admin"
        created = m.post("/api/v1/keys", json={"name": "login inference", "role": "inference"})
        assert created.status_code == 201 and created.json()["token"]
        listed = m.get("/api/v1/keys").json()
        assert listed and {k["role"] for k in listed} == {"inference"}
        admin_id = api.get("/api/v1/me").json()["key"]["id"]
        assert m.delete(f"/api/v1/keys/{admin_id}").json()["code"] == "role_forbidden"
        assert m.delete(f"/api/v1/keys/{created.json()['id']}").status_code == 200
        assert m.get("/api/v1/me").json()["key"]["role"] == "maintainer"
    inference = server.create_key("login inference only", "inference")
    r = httpx.get(f"{server.url}/api/v1/models", headers={"Authorization": f"Bearer {inference}"})
    assert r.status_code == 403
    assert r.json()["code"] == "role_forbidden"


def test_wrong_passwords_are_rate_limited(server):
    name = _user(server, "login-guessed", "viewer")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        codes = [client.post("/login", data={**login_token(client), "name": name, "password": f"guess {i}"}).status_code
                 for i in range(6)]
        assert codes == [401] * 5 + [429]
        r = client.post("/login", data={**login_token(client), "name": name, "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_sign_in_needs_the_forms_csrf_token(server, users):
    """Login CSRF: a cross-site form cannot sign the browser in to an account of the attacker's choosing."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert cookie.startswith("flashml_csrf=") and "httponly" in cookie and "samesite=strict" in cookie
        token = client.cookies["flashml_csrf"]
        assert f'name="csrf_token" value="{token}"' in page.text
        good = {"name": users["viewer"], "password": PASSWORD}
        for forged in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
            r = client.post("/login", data={**good, **forged})
            assert r.status_code == 403 and "security token" in r.text and 'role="alert"' in r.text
            assert "flashml_session" not in client.cookies
    # No cookie at all (what a cross-site form sends), even with a real token copied from a page.
    r = httpx.post(f"{server.url}/login", data={**good, "csrf_token": token})
    assert r.status_code == 403 and "security token" in r.text
    # A cookie the attacker minted (same value in cookie and form) but not signed by this server.
    r = httpx.post(f"{server.url}/login", data={**good, "csrf_token": "made.up"}, cookies={"flashml_csrf": "made.up"})
    assert r.status_code == 403
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/login", data={**login_token(client), **good})
        assert r.status_code == 303
