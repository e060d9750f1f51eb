"""The schema and the claims several nodes rely on, on both engines (SQLite and a throw-away PostgreSQL): a new
database migrates to the head with nothing missing, nodes starting at once on one new PostgreSQL database migrate it
once, a queued job is claimed by exactly one of several engines, and `flashml db` works on a PostgreSQL URL without
showing its password."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from flashml.cli import main
from flashml.db import jobs
from flashml.db.engine import open_database
from flashml.db.migrate import head, revision
from flashml.db.schema import metadata
from tests.helpers.in_process import run
from tests.helpers.postgres import rows


async def _differences(engine) -> list:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))


def test_a_new_database_is_made_at_head_and_matches_schema_py(db_target):
    async def go():
        engine = await open_database(db_target)
        try:
            return (await revision(engine), await _differences(engine),
                    await rows(engine, "SELECT version_num FROM alembic_version"))
        finally:
            await engine.dispose()

    state, differences, stamped = run(go())
    assert state.current == head() and state.up_to_date and not state.pre_alembic
    assert differences == []
    assert stamped == [(head(),)]


def test_nodes_starting_at_once_on_a_new_database_migrate_it_once(postgres):
    """PostgreSQL only: several nodes share one only there (one SQLite file serves one node and its CLI)."""
    url = postgres.new_database()

    async def go():
        engines = await asyncio.gather(*(open_database(url) for _ in range(4)))
        try:
            states = [await revision(e) for e in engines]
            return states, await rows(engines[0], "SELECT version_num FROM alembic_version")
        finally:
            for e in engines:
                await e.dispose()

    states, stamped = run(go())
    assert all(s.up_to_date for s in states) and stamped == [(head(),)]


def test_one_of_several_engines_claims_a_queued_job(db_target):
    """Each engine stands for a node: the compare-and-set updates let exactly one of them win."""
    async def go():
        engines = [await open_database(db_target) for _ in range(3)]
        try:
            first = engines[0]
            job = await jobs.add_job(first, model="m", version="1", dataset_id="d", output_format="csv", chunk_rows=8,
                                     on_bad_row="skip", mapping={}, rows_total=100, created_by="t")
            schedule = await jobs.add_schedule(first, spec={"dataset": "d", "model": "m"}, cron="0 3 * * *",
                                               timezone="UTC", created_by="t")
            claims = await asyncio.gather(*(jobs.move_job(e, job, ("queued",), "running", node=f"n{i}")
                                            for i, e in enumerate(engines) for _ in range(2)))
            return claims, await jobs.get_job(first, job), schedule, await jobs.dataset_users(first, "d", ("running",))
        finally:
            for e in engines:
                await e.dispose()

    claims, job, schedule, (job_ids, schedule_ids) = run(go())
    assert claims.count(True) == 1
    assert job["state"] == "running" and job["node"] == f"n{claims.index(True) // 2}"
    assert job_ids == [job["id"]] and schedule_ids == [schedule]  # the JSON query on the schedule's spec


def flashml(*args: str):
    return CliRunner().invoke(main, list(args), env={"FLASHML_DATABASE_URL": None, "FLASHML_CONFIG": None,
                                                      "FLASHML_DATA_DIR": None})


def test_db_current_and_upgrade_on_postgresql_never_show_the_password(postgres):
    # Loopback trusts every connection, so a password in the URL is accepted and ignored: only its display counts.
    url = make_url(postgres.new_database()).set(password="s3cret-pw").render_as_string(hide_password=False)
    shown = url.replace("s3cret-pw", "***")
    res = flashml("db", "current", "--database-url", url)
    assert res.exit_code == 0, res.output
    assert f"Database: {shown}" in res.output and "Revision: none (empty)" in res.output
    assert f"Head: {head()} (flashml db upgrade brings it there)" in res.output
    res = flashml("db", "upgrade", "--database-url", url)
    assert res.exit_code == 0 and f"Upgraded {shown} (empty) to revision {head()}." in res.output, res.output
    res = flashml("db", "current", "--database-url", url)
    assert f"Revision: {head()}" in res.output and "(up to date)" in res.output
    res = flashml("db", "upgrade", "--database-url", url)
    assert res.exit_code == 0 and f"already at the head revision {head()}" in res.output
