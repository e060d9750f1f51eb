"""Shared fixtures: one real server for the end-to-end tests, and an admin key for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server_process import ServerProcess

# Short limits keep the tests that kill a hanging or greedy model quick.
SERVER_FLAGS = ("--validation-timeout-s", "15", "--validation-memory-bytes", str(1536 * 1024 * 1024),
                "--upload-wait-s", "30", "--in-use-window-s", "2", "--device", "cpu")


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
