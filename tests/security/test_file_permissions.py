"""FlashML's state is private to its user whatever the umask: the data directory 0700, the database and its
WAL files 0600, the store and scratch folders private; and a warning when it serves beyond this machine in clear.

Every test runs under umask 022, the common default that made everything world-readable before."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from flashml.db.engine import open_database
from flashml.storage.local import LocalArtifactStore
from flashml.storage.scratch import ScratchSpace
from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml

WARNING = "without TLS"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The test process, and the servers and CLI commands it starts (they inherit it), under umask 022."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def readable_by_others(root: Path) -> list[str]:
    """Everything under ``root`` (itself too) that grants anything to group or others."""
    return [f"{p.relative_to(root.parent)} {mode(p):04o}" for p in [root, *root.rglob("*")]
            if not p.is_symlink() and mode(p) & 0o077]


def test_database_and_its_wal_files_are_private(tmp_path):
    async def go(path: Path) -> None:
        engine = await open_database(path)
        async with engine.begin() as conn:  # a write: the -wal and -shm files exist now
            await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            assert {p.name for p in path.parent.iterdir()} >= {"flashml.db", "flashml.db-wal", "flashml.db-shm"}
            assert readable_by_others(path.parent) == []
        await engine.dispose()

    asyncio.run(go(tmp_path / "new" / "flashml.db"))
    old = tmp_path / "old" / "flashml.db"  # made world-readable by an older FlashML: tightened
    old.parent.mkdir(mode=0o700)
    old.touch(mode=0o644)
    asyncio.run(go(old))


def test_store_and_scratch_folders_are_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    LocalArtifactStore(data).prepare()
    ScratchSpace(data)
    assert {"models", "uploads", "incoming", "tmp"} <= {p.name for p in data.iterdir()}
    assert readable_by_others(data) == []


def test_cli_creates_a_private_data_dir(tmp_path):
    data = tmp_path / "fresh" / "data"
    flashml("keys", "create", "--name", "k", "--role", "admin", "--data-dir", str(data), "--create")
    assert mode(data) == 0o700 and mode(data / "flashml.db") == 0o600
    assert readable_by_others(data) == []


@pytest.mark.server
def test_serve_keeps_every_file_private_and_tightens_an_open_data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()  # 0755 under umask 022, as a hand-made folder or an older FlashML left it
    assert mode(data) == 0o755
    srv = ServerProcess(data, *SERVER_FLAGS).start()
    try:
        key = srv.create_key()
        model = onnx_models.add_model(tmp_path / "add.onnx").read_bytes()
        r = httpx.post(f"{srv.url}/api/v1/models/m/versions", content=model, timeout=120,
                       headers={"content-type": "application/octet-stream", "authorization": f"Bearer {key}"})
        assert r.status_code == 201, r.text
        assert any(p.name.endswith(".onnx") for p in (data / "models").rglob("*"))
        assert (data / "flashml.db-wal").exists()
        assert readable_by_others(data) == []
        assert f"made its data directory {data} private (mode 0755 -> 0700)" in srv.log()
        assert WARNING not in srv.log()  # loopback: nothing to warn about
    finally:
        srv.stop()


@pytest.mark.server
def test_warning_when_serving_beyond_loopback_without_tls(tmp_path):
    srv = ServerProcess(tmp_path / "open", *SERVER_FLAGS, "--host", "0.0.0.0").start()
    srv.stop()
    log = srv.log()
    assert f"WARNING: FlashML listens on 0.0.0.0:{srv.port} {WARNING}" in log
    assert "--tls-certificate" in log and "--trusted-proxies" in log and "--host 127.0.0.1" in log
    # Behind a trusted (HTTPS) proxy there is nothing to warn about.
    srv = ServerProcess(tmp_path / "proxied", *SERVER_FLAGS, "--host", "0.0.0.0",
                        "--trusted-proxies", "127.0.0.1").start()
    srv.stop()
    assert WARNING not in srv.log()
