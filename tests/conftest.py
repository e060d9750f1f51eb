"""Shared fixtures: one real server for the end-to-end tests, an admin key for it, the batch jobs' model on it,
and a moto S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.s3_server import moto_server
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

__all__ = ["SERVER_FLAGS"]  # tests/security/ still imports it from here


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("e2e") / "data", *SERVER_FLAGS).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin_key(server: ServerProcess) -> str:
    return server.create_key("e2e admin", "admin")


@pytest.fixture()
def api(server: ServerProcess, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def adder(server: ServerProcess, admin_key: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The batch jobs' model on the shared server: v1 adds, v2 adds 100, alias stable is v1 (test_e2e_infer.py
    overrides `adder` with a model of its own)."""
    model = "jobadder"
    folder = tmp_path_factory.mktemp("jobs")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        if api.get(f"/api/v1/models/{model}").status_code == 200:  # another module of this session made it
            return model
        assert upload(api, model, onnx_models.offset_add_model(folder / "v1.onnx", 0)).status_code == 201
        assert upload(api, model, onnx_models.offset_add_model(folder / "v2.onnx", 100)).status_code == 201
        assert api.put(f"/api/v1/models/{model}/aliases/stable", json={"version": 1}).status_code == 200
    return model


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server on loopback, one per module."""
    with moto_server() as endpoint:
        yield endpoint
