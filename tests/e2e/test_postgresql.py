"""The real server over HTTP with its metadata in PostgreSQL (FLASHML_DATABASE_URL, a throw-away cluster): a model
uploaded, answered, keys made by the CLI and the API, a restart, and everything still there; no SQLite file made."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "flashml", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def _infer(srv: ServerProcess, key: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/v2/models/pg/infer", json={"inputs": [A, B]},
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)


async def _stored(url: str) -> tuple[list, list]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        versions = [tuple(r) for r in await conn.fetch(
            "SELECT m.name, v.version, v.state FROM versions v JOIN models m ON m.id = v.model_id ORDER BY v.version")]
        keys = [r["name"] for r in await conn.fetch("SELECT name FROM api_keys ORDER BY id")]
        return versions, keys
    finally:
        await conn.close()


def test_the_server_keeps_models_and_keys_in_postgresql_across_a_restart(postgres, tmp_path):
    url = postgres.new_database()
    env = {"FLASHML_DATABASE_URL": url}
    data = tmp_path / "data"
    srv = ServerProcess(data, *SERVER_FLAGS, env=env).start()
    try:
        admin = _cli(env, "keys", "create", "--name", "pg admin", "--role", "admin", "--data-dir", str(data))
        api = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        onnx_models.add_model(tmp_path / "m.onnx")
        assert upload(api, "pg", tmp_path / "m.onnx").status_code == 201
        made = api.post("/api/v1/keys", json={"name": "pg reader", "role": "inference", "models": ["pg"]})
        assert made.status_code == 201, made.text
        reader = made.json()["token"]
        r = _infer(srv, reader)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
        api.close()
    finally:
        srv.stop()

    assert asyncio.run(_stored(url)) == ([("pg", 1, "ready")], ["pg admin", "pg reader"])
    assert not (data / "flashml.db").exists()  # the metadata went to PostgreSQL only

    srv = ServerProcess(data, *SERVER_FLAGS, env=env).start()
    try:
        r = _infer(srv, reader)  # the key and the version, read back from PostgreSQL at start
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5], r.text
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as api:
            assert [v["version"] for v in api.get("/api/v1/models/pg/versions").json()] == [1]
            actions = {e["action"] for e in api.get("/api/v1/audit").json()}
            assert {"key.create", "version.upload"} <= actions
    finally:
        srv.stop()
