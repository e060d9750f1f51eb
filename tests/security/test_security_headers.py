"""Security headers on every kind of answer: console pages (a strict CSP), JSON, static files, errors, and V2
inference on the server's RSGI fast path; HSTS only when the browser came over HTTPS."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from flashml.api.security_headers import page_policy
from flashml.app import create_app
from flashml.settings import load_settings
from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NOT_A_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
INFER = {"inputs": [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]} for n in "ab"]}


def assert_protected(r: httpx.Response, *, page: bool, https: bool = False) -> None:
    h = r.headers
    assert h.get("x-content-type-options") == "nosniff", (r.url, dict(h))
    assert h.get("referrer-policy") == "same-origin" and h.get("x-frame-options") == "DENY", (r.url, dict(h))
    assert h.get("content-security-policy") == (PAGE_POLICY if page else NOT_A_PAGE_POLICY), (r.url, dict(h))
    assert h.get("strict-transport-security") == (HSTS if https else None), (r.url, dict(h))


def _answers(tmp_path: Path, base_url: str) -> list[tuple[str, httpx.Response]]:
    settings = load_settings(cli={"data_dir": tmp_path / "data", "device": "cpu", "autotune": False}, env={})
    app = create_app(settings)

    async def go() -> list[tuple[str, httpx.Response]]:
        async with AsyncTestClient(app, base_url=base_url) as client:
            key = (await app.state.services.keys.create(name="t", role="admin", models=None, actor="t")).token
            auth = {"authorization": f"Bearer {key}"}
            return [
                ("page", await client.get("/login")),
                ("json", await client.get("/api/v1/models", headers=auth)),
                ("json", await client.get("/api/v1/models")),  # 401
                ("json", await client.get("/api/v1/no-such-thing", headers=auth)),  # 404
                ("page", await client.get("/no-such-page", headers={"accept": "text/html"})),  # the error page
                ("file", await client.get("/static/flashml.css")),
                ("file", await client.get("/static/vendor/htmx.min.js")),
                ("json", await client.get("/schema/openapi.json")),
                ("json", await client.post("/v2/models/none/infer", json=INFER, headers=auth)),  # Litestar's route
            ]

    return asyncio.run(go())


def test_every_kind_of_answer_has_the_headers_and_no_hsts_over_plain_http(tmp_path):
    answers = _answers(tmp_path, "http://testserver.local")
    assert [r.status_code for _, r in answers] == [200, 200, 401, 404, 404, 200, 200, 200, 404]
    for kind, r in answers:
        assert_protected(r, page=kind == "page")
    assert answers[0][1].headers["content-type"].startswith("text/html")


def test_hsts_when_the_request_came_over_https(tmp_path):
    for kind, r in _answers(tmp_path, "https://testserver.local"):
        assert_protected(r, page=kind == "page", https=True)


def test_with_the_s3_store_the_console_may_send_uploads_to_it():
    settings = load_settings(cli={"storage": "s3", "s3_endpoint": "minio.lan:9000", "s3_secure": False}, env={})
    assert "connect-src 'self' http://minio.lan:9000;" in page_policy(settings)
    assert "unsafe" not in page_policy(settings)


# ---- the real server: Granian, the RSGI fast path for V2 inference, TLS, a trusted proxy ----

def _model(srv: ServerProcess, folder: Path) -> str:
    key = srv.create_key()
    path = onnx_models.add_model(folder / "m.onnx")
    r = httpx.post(f"{srv.url}/api/v1/models/m/versions", content=path.read_bytes(), verify=False, timeout=120,
                   headers={"content-type": "application/octet-stream", "authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    return key


def _fast_path(c: httpx.Client, key: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    auth = {"authorization": f"Bearer {key}", **(headers or {})}
    big = json.dumps({**INFER, "pad": "x" * 5000}).encode()
    return [c.post("/v2/models/m/infer", json=INFER, headers=auth),  # answered by flashml.server itself
            c.post("/v2/models/m/versions/1/infer", json=INFER, headers=auth),
            c.post("/v2/models/nope/infer", json=INFER, headers=auth),  # 404 there
            c.post("/v2/models/m/infer", content=big, headers={**auth, "content-type": "application/json"})]  # 413


@pytest.mark.server
def test_real_server_fast_path_and_trusted_proxy(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--max-request-bytes", "4000",
                        "--trusted-proxies", "127.0.0.0/8").start()
    try:
        key = _model(srv, tmp_path)
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            answers = _fast_path(c, key)
            assert [r.status_code for r in answers] == [200, 200, 404, 413]
            for r in answers:
                assert_protected(r, page=False)
            assert_protected(c.get("/login"), page=True)
            assert_protected(c.get("/static/flashml.css"), page=False)
            # Behind a trusted proxy that says the browser came over HTTPS: HSTS, on both paths.
            proxied = {"x-forwarded-proto": "https"}
            for r in _fast_path(c, key, proxied):
                assert_protected(r, page=False, https=True)
            assert_protected(c.get("/login", headers=proxied), page=True, https=True)
            assert_protected(c.get("/login", headers={"x-forwarded-proto": "http"}), page=True)
    finally:
        srv.stop()


@pytest.mark.server
def test_real_server_over_tls_sends_hsts(tmp_path):
    cert, tls_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(tls_key), "-out", str(cert)], check=True, capture_output=True)
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--max-request-bytes", "4000",
                        "--tls-certificate", str(cert), "--tls-key", str(tls_key)).start()
    try:
        key = _model(srv, tmp_path)
        with httpx.Client(base_url=srv.url, timeout=60, verify=False) as c:
            answers = _fast_path(c, key)
            assert [r.status_code for r in answers] == [200, 200, 404, 413]
            for r in answers:
                assert_protected(r, page=False, https=True)
            assert_protected(c.get("/login"), page=True, https=True)
            assert_protected(c.get("/v2/health/ready"), page=False, https=True)
    finally:
        srv.stop()
