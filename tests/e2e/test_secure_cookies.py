"""The session cookie gets Secure when the browser came over HTTPS: Granian's own TLS, or a trusted proxy."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml, login_token

pytestmark = pytest.mark.server

PASSWORD = "secure cookie password"


def _set_cookie(r: httpx.Response, name: str) -> str:
    return next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(f"{name}="))


def _session_cookie(server: ServerProcess, name: str, headers: dict[str, str] | None = None) -> str:
    """Sign in as a new user with ``headers`` (what a proxy adds); the session's Set-Cookie header.

    The cookie jar would not send a Secure cookie back over plain HTTP (the proxy's leg), so the pre-session
    cookie goes back by hand, as the browser would send it over HTTPS to the proxy."""
    flashml("users", "create", name, "--role", "viewer", "--password-stdin", "--data-dir", str(server.data_dir),
            input=f"{PASSWORD}\n")
    with httpx.Client(base_url=server.url, timeout=60, verify=False, headers=headers) as client:
        page = client.get("/login")
        token = login_token(client)["csrf_token"]
        pre_session = _set_cookie(page, "flashml_csrf").lower()
        r = client.post("/login", data={"csrf_token": token, "name": name, "password": PASSWORD},
                        headers={"Cookie": f"flashml_csrf={token}"})
        assert r.status_code == 303, r.text
        session = _set_cookie(r, "flashml_session")
        assert ("secure" in pre_session) == ("secure" in session.lower())  # both cookies, the same rule
        return session


def test_forwarded_headers_are_ignored_from_an_untrusted_peer(server, api):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    assert "secure" not in _session_cookie(server, "cookie-untrusted", headers).lower()
    events = api.get("/api/v1/audit", params={"limit": 1000}).json()
    (login,) = [e for e in events if e["action"] == "user.login" and e["target"] == "user:cookie-untrusted"]
    assert login["detail"]["ip"] == "127.0.0.1"


def test_a_trusted_proxy_makes_the_cookie_secure(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--trusted-proxies", "127.0.0.0/8").start()
    try:
        assert "secure" in _session_cookie(srv, "cookie-proxied", {"X-Forwarded-Proto": "https"}).lower()
        assert "secure" not in _session_cookie(srv, "cookie-plain", {"X-Forwarded-Proto": "http"}).lower()
        assert "secure" not in _session_cookie(srv, "cookie-direct").lower()
        # The audit log (and the sign-in brake) see the browser's address the proxy reports, not the proxy's.
        _session_cookie(srv, "cookie-forwarded", {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
        key = srv.create_key("cookie audit", "admin")
        events = httpx.get(f"{srv.url}/api/v1/audit", headers={"Authorization": f"Bearer {key}"}).json()
        logins = {e["target"]: e["detail"]["ip"] for e in events if e["action"] == "user.login"}
        assert logins["user:cookie-forwarded"] == "203.0.113.9" and logins["user:cookie-direct"] == "127.0.0.1"
    finally:
        srv.stop()


def test_granian_tls_makes_the_cookie_secure(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--tls-certificate", str(cert), "--tls-key", str(key))
    srv.start()
    try:
        assert srv.setup_url().startswith("https://")  # links printed at start-up use https too
        cookie = _session_cookie(srv, "cookie-tls").lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        srv.stop()


def test_a_certificate_without_its_key_is_refused(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    r = flashml("serve", "--data-dir", str(tmp_path / "data"), "--tls-certificate", str(cert), check=False)
    assert r.returncode != 0 and "tls_certificate and tls_key go together" in r.stderr
