"""The ASGI fast path for V2 inference answers exactly like the Litestar route it stands in front of."""

from __future__ import annotations

import asyncio
import json

import httpx
from litestar.testing import AsyncTestClient

from flashml.api.v2_infer_asgi import InferFastPath
from flashml.app import create_app
from flashml.settings import load_settings
from tests import onnx_models

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}


def _requests(key: str) -> list[tuple[str, dict, bytes]]:
    auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    ok = json.dumps({"inputs": [A, B]}).encode()
    return [
        ("/v2/models/m/infer", auth, ok),
        ("/v2/models/m/versions/1/infer", auth, ok),
        ("/v2/models/m/versions/9/infer", auth, ok),  # 404 version_not_found
        ("/v2/models/nope/infer", auth, ok),  # 404 model_not_found
        ("/v2/models/m/infer", {"content-type": "application/json"}, ok),  # 401 missing_key
        ("/v2/models/m/infer", {**auth, "authorization": "Bearer fml_bad"}, ok),  # 401 invalid_key
        ("/v2/models/m/infer", auth, b"{not json"),  # 400
        ("/v2/models/m/infer", auth, json.dumps({"inputs": [A]}).encode()),  # 400: b is missing
        ("/v2/models/m/infer", {**auth, "inference-header-content-length": "x"}, ok),  # 400 malformed_request
        ("/v2/models/m/infer", {**auth, "flashml-timeout-ms": "-1"}, ok),  # 400 malformed_request
        ("/v2/models/m/infer", auth, json.dumps({"inputs": [A, B], "pad": "x" * 3000}).encode()),  # 413
    ]


def test_fast_path_and_litestar_route_answer_alike(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    settings = load_settings(cli={"data_dir": tmp_path / "data", "device": "cpu", "autotune": False,
                                  "max_request_bytes": 2000}, env={})
    app = create_app(settings)
    fast = InferFastPath(app, settings.max_request_bytes)

    async def check() -> None:
        async with AsyncTestClient(app) as direct:  # runs the lifespan: services open, models load
            services = app.state.services
            key = (await services.keys.create(name="t", role="admin", models=None, actor="test"))["token"]
            r = await direct.post("/api/v1/models/m/versions", content=(tmp_path / "m.onnx").read_bytes(),
                                  headers={"authorization": f"Bearer {key}",
                                           "content-type": "application/octet-stream"})
            assert r.status_code == 201, r.text
            transport = httpx.ASGITransport(app=fast)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as via_fast:
                for path, headers, body in _requests(key):
                    a = await direct.post(path, content=body, headers=headers)
                    b = await via_fast.post(path, content=body, headers=headers)
                    assert (a.status_code, a.json()) == (b.status_code, b.json()), path
                    assert a.headers["content-type"].split(";")[0] == b.headers["content-type"], path
                    assert a.headers.get("flashml-model-version") == b.headers.get("flashml-model-version")
                # Not an inference call: the fast path hands it to Litestar.
                assert (await via_fast.get("/v2/health/live")).json() == {"live": True}
                r = await via_fast.get("/v2/models/m/infer")
                assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"

    asyncio.run(check())
