"""Helpers for in-process tests: a fresh event loop, versions published through the registry, and the whole app
(create_app, its lifespan run as `flashml serve` runs it) served to Litestar's TestClient without a socket."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from flashml.app import create_app
from flashml.settings import load_settings
from tests.helpers import onnx_models

BASE_URL = "http://testserver.local"
# tests/helpers/server_process.py's SERVER_FLAGS as settings: the same short limits as the real test server.
TEST_SETTINGS = {"validation_timeout_s": 15, "validation_memory_bytes": 1536 * 1024 * 1024, "upload_wait_s": 30,
                 "in_use_window_s": 2, "device": "cpu"}


def run(coro):
    """asyncio.run in a thread of its own: works even when a session fixture left a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _body(path: Path):
    yield path.read_bytes()


async def publish_offset_versions(registry: Any, folder: Path, offsets: tuple[int, ...] = (0, 100),
                                  model: str = "m") -> None:
    """Versions 1, 2, ... of ``model``, each adding its offset to its input (tell them apart by the answer)."""
    for offset in offsets:
        path = onnx_models.offset_add_model(folder / f"{offset}.onnx", offset)
        record, done = await registry.upload(model, _body(path), source_name=path.name, actor="t",
                                             content_length=None)
        assert done and record.state == "ready", record


class AppClient(TestClient):
    """A client of an app whose lifespan another client runs: it owns no loop and no connection to close."""

    def close(self) -> None:
        pass


class InProcessApp:
    """The app on ``data_dir`` with its services open, as ServerProcess is the real server: one TestClient runs the
    lifespan, and every further client calls the same running app on the same event loop."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.settings = load_settings(cli={"data_dir": data_dir, **TEST_SETTINGS, **settings}, env={})
        self.app = create_app(self.settings)
        self._lifespan = TestClient(self.app, base_url=BASE_URL)

    def __enter__(self) -> InProcessApp:
        self._lifespan.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lifespan.__exit__(*exc)

    @property
    def services(self) -> Any:
        return self.app.state.services

    def call(self, fn, *args: Any, **kwargs: Any) -> Any:
        """Run the coroutine function ``fn`` on the app's event loop and return its result."""
        return self._lifespan.blocking_portal.call(partial(fn, *args, **kwargs))

    def client(self, key: str | None = None, timeout: float = 120) -> AppClient:
        """A client of the running app (no redirects followed, as httpx.Client), with ``key`` as its bearer key."""
        client = AppClient(self.app, base_url=BASE_URL, timeout=timeout)
        client.blocking_portal = self._lifespan.blocking_portal  # the app's loop, not a fresh one per request
        client.follow_redirects = False
        if key:
            client.headers["Authorization"] = f"Bearer {key}"
        return client

    def create_key(self, name: str = "test", role: str = "admin", models: tuple[str, ...] = ()) -> str:
        record = self.call(self.services.keys.create, name=name, role=role, models=list(models) or None,
                           actor="test")
        return record.token

    def create_user(self, name: str, password: str, role: str) -> None:
        self.call(self.services.users.create, name, password, role=role, actor="test")
