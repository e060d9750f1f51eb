"""The JSON and V2 API in process: one app per database engine for the run (SQLite, then a throw-away PostgreSQL),
as tests/e2e/ share one real server, served to Litestar's TestClient without a socket. The fixtures keep the e2e
names (admin_key, api, adder) so a module moves between the two folders without rewriting its tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.helpers.in_process import AppClient, InProcessApp
from tests.helpers.jobs import publish_adder


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """Every API test runs on both engines: the registry, keys, users, jobs and audit queries meet PostgreSQL's
    types, lengths and ordering as well as SQLite's."""
    database = {"database_url": request.getfixturevalue("postgres").new_database()} \
        if request.param == "postgresql" else {}
    with InProcessApp(tmp_path_factory.mktemp("api") / "data", **database) as running:
        yield running


@pytest.fixture(scope="session")
def admin_key(app: InProcessApp) -> str:
    return app.create_key("api admin", "admin")


@pytest.fixture()
def api(app: InProcessApp, admin_key: str) -> AppClient:
    return app.client(admin_key)


@pytest.fixture(scope="module")
def adder(app: InProcessApp, admin_key: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The batch jobs' model (helpers/jobs.py's publish_adder) on the shared app."""
    with closing(app.client(admin_key)) as api:
        return publish_adder(api, tmp_path_factory.mktemp("jobs"))
