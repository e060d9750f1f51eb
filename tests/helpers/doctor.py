"""What the doctor's tests share: settings for a data directory under tmp_path, a healthy node made for real (a
private data dir, a database made by FlashML itself, the local store's folders), a free port, rows by name."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from flashml.db.engine import open_database
from flashml.settings import Settings, load_settings
from flashml.storage.local import LocalArtifactStore


def settings(tmp_path: Path, **values) -> Settings:
    return load_settings({"data_dir": str(tmp_path / "data"), **values}, env={})


def healthy(tmp_path: Path) -> Settings:
    s = settings(tmp_path, device="cpu", port=free_port())
    s.data_dir.mkdir(mode=0o700)
    asyncio.run(_make_db(s.db_path))
    LocalArtifactStore(s.data_dir).prepare()
    return s


async def _make_db(path: Path) -> None:
    engine = await open_database(path)
    await engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def by_name(checks):
    return {c.name: c for c in checks}
