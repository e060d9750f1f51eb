"""Shared fixtures: one real server for the end-to-end tests, an admin key for it, the batch jobs' model on it,
a moto S3 server on loopback, and a throw-away PostgreSQL cluster with the metadata database on either engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.event_loop import LoopThread
from tests.helpers.jobs import publish_adder
from tests.helpers.postgres import PostgresCluster
from tests.helpers.s3_server import moto_server
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess


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
    """The batch jobs' model on the shared server (helpers/jobs.py's publish_adder); tests/api/conftest.py has the
    same on the in-process app."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        return publish_adder(api, tmp_path_factory.mktemp("jobs"))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server on loopback, one per module."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this session's own (tests/helpers/postgres.py); missing binaries fail, never skip."""
    try:
        cluster = PostgresCluster().start()
    except RuntimeError as err:
        pytest.fail(f"no PostgreSQL for the tests: {err}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The metadata database on each engine in turn: a new SQLite file, then a new empty PostgreSQL database (its
    URL). Pass it to open_database, or to settings through helpers/postgres.py's database_settings."""
    if request.param == "sqlite":
        return tmp_path / "flashml.db"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture()
def runner() -> Iterator[LoopThread]:
    """One event loop for the whole test (helpers/event_loop.py): an engine outlives a single asyncio.run."""
    loop = LoopThread()
    yield loop
    loop.close()
