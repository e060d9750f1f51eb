"""The server's short path for V2 inference answers exactly like the Litestar route it stands in for.

The real server (``flashml serve``: Granian, RSGI, ``flashml.server``) and the Litestar app in process get the
same model and the same good and bad requests; status, body and the headers that matter must match.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from litestar.testing import AsyncTestClient

from flashml.app import create_app
from flashml.settings import load_settings
from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}
LIMIT = 2000  # max_request_bytes on both


def _requests() -> list[tuple[str, dict, bytes]]:
    json_body = {"content-type": "application/json"}
    ok = json.dumps({"inputs": [A, B]}).encode()
    return [
        ("/v2/models/m/infer", json_body, ok),
        ("/v2/models/m/versions/1/infer", json_body, ok),
        ("/v2/models/m/versions/9/infer", json_body, ok),  # 404 version_not_found
        ("/v2/models/nope/infer", json_body, ok),  # 404 model_not_found
        ("/v2/models/m/infer", {**json_body, "authorization": ""}, ok),  # 401 missing_key
        ("/v2/models/m/infer", {**json_body, "authorization": "Bearer fml_bad"}, ok),  # 401 invalid_key
        ("/v2/models/m/infer", json_body, b"{not json"),  # 400
        ("/v2/models/m/infer", json_body, json.dumps({"inputs": [A]}).encode()),  # 400: b is missing
        ("/v2/models/m/infer", {**json_body, "inference-header-content-length": "x"}, ok),  # 400
        ("/v2/models/m/infer", {**json_body, "flashml-timeout-ms": "-1"}, ok),  # 400
        ("/v2/models/m/infer", json_body, json.dumps({"inputs": [A, B], "pad": "x" * LIMIT}).encode()),  # 413
    ]


def _with_key(key: str) -> list[tuple[str, dict, bytes]]:
    out = []
    for path, headers, body in _requests():
        headers = {"authorization": f"Bearer {key}", **headers}
        if not headers["authorization"]:
            del headers["authorization"]
        out.append((path, headers, body))
    return out


def _seen(path: str, r: httpx.Response) -> tuple:
    content_type = r.headers["content-type"].split(";")[0]
    body = r.json()
    # flashml.server gives every request an id, in the header and in an error's body; Litestar alone (in process,
    # below) has none to give, so the id is checked here and left out of the comparison.
    if "request_id" in body:
        assert r.status_code >= 400 and body.pop("request_id") == r.headers["x-request-id"]
    return path, r.status_code, body, content_type, r.headers.get("flashml-model-version")


def test_fast_path_answers_like_the_litestar_route(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    model = (tmp_path / "m.onnx").read_bytes()
    upload_headers = {"content-type": "application/octet-stream"}

    srv = ServerProcess(tmp_path / "served", *SERVER_FLAGS, "--max-request-bytes", str(LIMIT)).start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            r = c.post("/api/v1/models/m/versions", content=model,
                       headers={**upload_headers, "authorization": f"Bearer {key}"})
            assert r.status_code == 201, r.text
            served = [_seen(p, c.post(p, headers=h, content=b)) for p, h, b in _with_key(key)]
            # Not an inference call: the short path hands it to Litestar.
            assert c.get("/v2/health/live").json() == {"live": True}
            r = c.get("/v2/models/m/infer")
            assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    finally:
        srv.stop()

    settings = load_settings(cli={"data_dir": tmp_path / "direct", "device": "cpu", "autotune": False,
                                  "max_request_bytes": LIMIT}, env={})
    app = create_app(settings)

    async def direct() -> list[tuple]:
        async with AsyncTestClient(app) as client:  # runs the lifespan: services open, models load
            key = (await app.state.services.keys.create(name="t", role="admin", models=None, actor="test")).token
            r = await client.post("/api/v1/models/m/versions", content=model,
                                  headers={**upload_headers, "authorization": f"Bearer {key}"})
            assert r.status_code == 201, r.text
            return [_seen(p, await client.post(p, headers=h, content=b)) for p, h, b in _with_key(key)]

    assert served == asyncio.run(direct())
