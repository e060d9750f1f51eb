"""Alembic migrations on real SQLite files: a new database is made at the head revision, and a database made by
the previous release (no alembic_version) is adopted, stamped and upgraded with its rows kept."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from flashml.db.aliases import put_alias
from flashml.db.engine import open_database
from flashml.db.keys import add_usage, list_keys, usage_on
from flashml.db.migrate import head, revision
from flashml.db.schema import metadata

PREVIOUS_RELEASE = Path(__file__).with_name("previous_release.sql")


def run(coro):
    return asyncio.run(coro)


def previous_release_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(PREVIOUS_RELEASE.read_text())
    conn.close()
    return path


def schema_differences(engine) -> list:
    async def go():
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    return run(go())


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_new_database_is_made_at_head_and_matches_schema_py(tmp_path):
    engine = run(open_database(tmp_path / "new.db"))
    try:
        state = run(revision(engine))
        assert state.current == head() and state.up_to_date and not state.pre_alembic
        assert schema_differences(engine) == []
    finally:
        run(engine.dispose())
    assert tables(tmp_path / "new.db") == set(metadata.tables) | {"alembic_version"}


def test_opening_again_changes_nothing(tmp_path):
    for _ in range(2):
        engine = run(open_database(tmp_path / "db"))
        run(engine.dispose())
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]


def test_the_previous_release_database_is_stamped_upgraded_and_keeps_its_rows(tmp_path):
    db = previous_release_db(tmp_path / "flashml.db")
    assert "alembic_version" not in tables(db)
    engine = run(open_database(db))
    try:
        assert run(revision(engine)).current == head()
        assert schema_differences(engine) == []
        keys = run(list_keys(engine))
        limits = [(k["name"], k["models"], k["rate_limit_per_s"], k["weight"]) for k in keys]
        assert limits == [("ci", ["iris"], 5.0, 2)]
        assert run(usage_on(engine, "2026-12-04")) == {1: 42}
        run(add_usage(engine, {(1, "2026-12-04"): 3}))  # the upsert on an adopted table
        assert run(usage_on(engine, "2026-12-04")) == {1: 45}
        assert run(put_alias(engine, "iris", "production", {"1": 100}, actor="bob")) is not None
    finally:
        run(engine.dispose())
    with sqlite3.connect(db) as conn:
        for table, n in (("users", 1), ("models", 1), ("versions", 1), ("aliases", 1), ("audit", 1), ("jobs", 1),
                         ("job_chunks", 1), ("datasets", 1), ("housekeeping_runs", 1)):
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n, table
        assert conn.execute("SELECT name, role FROM users").fetchall() == [("ada", "admin")]
        assert conn.execute("SELECT state, rows_done FROM jobs").fetchall() == [("running", 2)]
        assert conn.execute("SELECT updated_by FROM aliases").fetchall() == [("bob",)]


def test_a_database_older_than_the_baseline_gets_its_missing_tables_and_columns(tmp_path):
    db = previous_release_db(tmp_path / "flashml.db")
    with sqlite3.connect(db) as conn:  # as a release before these three existed made it
        conn.execute("DROP TABLE housekeeping_runs")
        conn.execute("ALTER TABLE users DROP COLUMN unlocked_at")
        conn.execute("ALTER TABLE versions DROP COLUMN pinned")
    conn.close()
    engine = run(open_database(db))
    try:
        assert schema_differences(engine) == []
        assert run(revision(engine)).current == head()
    finally:
        run(engine.dispose())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT pinned FROM versions").fetchall() == [(0,)]  # the column's server default
        assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]


def test_the_revision_of_a_previous_release_database_is_read_without_changing_it(tmp_path):
    from flashml.db.engine import create_engine

    db = previous_release_db(tmp_path / "flashml.db")
    engine = create_engine(db)
    try:
        state = run(revision(engine))
    finally:
        run(engine.dispose())
    assert state.current is None and state.pre_alembic and not state.up_to_date
    assert "alembic_version" not in tables(db)


def test_foreign_keys_are_on_again_after_the_migrations(tmp_path):
    """Migrations turn SQLite's foreign keys off (table rebuilds): the connections the server then uses have them on."""
    engine = run(open_database(previous_release_db(tmp_path / "flashml.db")))

    async def pragma():
        async with engine.connect() as conn:
            return (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
    try:
        assert run(pragma()) == 1
        with pytest.raises(Exception, match="FOREIGN KEY"):
            async def orphan():
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO job_log (job_id, at, level, message) "
                                            "VALUES (99, 0, 'info', 'x')"))
            run(orphan())
    finally:
        run(engine.dispose())

