"""The doctor's checks of the metadata database. SQLite: its integrity (``PRAGMA quick_check``), its migration
revision and its tables against flashml/db/schema.py, saying what the next `flashml serve` will do (it runs the
pending migrations at start, flashml.db.migrate). PostgreSQL: that it answers, and its revision against this
FlashML's newest.

The database is opened read-write but nothing is written: a read-only open of a WAL database fails where its
``-shm`` file is missing, and the server may be running (WAL lets the doctor read beside it).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import Column, DefaultClause

from flashml.db import migrate
from flashml.db.schema import metadata
from flashml.ops.doctor import Check, fail, ok, warn
from flashml.settings import Settings

QUICK_CHECK_ROWS = 5  # problems quoted in the row at most


def settings_database_checks(settings: Settings) -> list[Check]:
    """The database the settings name: the server one of database_url, else the SQLite file in data_dir."""
    if settings.database_url:
        return [asyncio.run(_server_revision(settings.database_url))]
    return database_checks(settings.db_path)


async def _server_revision(url: str) -> Check:
    from flashml.db.engine import shown

    try:
        rev = await migrate.reach(url)
    except migrate.DatabaseUnreachableError as exc:
        return fail("database", str(exc))
    return _revision_check(shown(url), rev.current, rev.pre_alembic)


def _revision_check(where: str, current: str | None, pre_alembic: bool) -> Check:
    head = migrate.head()
    if current == head:
        return ok("migrations", f"{where} is at this FlashML's newest schema revision ({head}).")
    if current is None:
        what = "was made before migrations: it is adopted" if pre_alembic else "is empty: its tables are made"
        return ok("migrations", f"{where} {what} at the next start of flashml serve (or by flashml db upgrade).")
    if current in migrate.known():
        return ok("migrations", f"{where} is at schema revision {current}; flashml serve (or flashml db upgrade) "
                                f"brings it to {head} at its next start.")
    return fail("migrations", f"{where} is at schema revision {current}, which this FlashML does not know: a newer "
                              "FlashML made it. Run that version, or restore a backup made by this one.")


def database_checks(path: Path) -> list[Check]:
    try:
        path.stat()
    except FileNotFoundError:
        return [warn("database", f"there is no database at {path} yet: flashml serve makes it at its first start.")]
    except OSError as exc:
        return [fail("database", f"{path} cannot be read by this user ({exc.strerror}): run the doctor as the user "
                                 "that runs the server.")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return [fail("database", f"{path} cannot be opened: {exc}. Check that this user may read and write it.")]
    try:
        integrity = _integrity(conn, path)
        if integrity.status == "fail":
            return [integrity]
        current = _stamped(conn)
        checks = [integrity, _revision_check(str(path), current, current is None and _has_tables(conn))]
        if checks[-1].status == "fail" or current != migrate.head():
            return checks  # the schema check below compares against the newest revision's tables only
        return [*checks, _schema(conn)]
    finally:
        conn.close()


def _integrity(conn: sqlite3.Connection, path: Path) -> Check:
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA quick_check({QUICK_CHECK_ROWS})")]
    except sqlite3.DatabaseError as exc:
        return fail("database", f"{path} is not a usable SQLite database ({exc}). Restore it from a backup "
                                "(flashml restore) or move it away to start empty.")
    if rows != ["ok"]:
        return fail("database", f"{path} is damaged: SQLite's quick_check found " + "; ".join(rows)
                    + ". Restore it from a backup (flashml restore); sqlite3's .recover may save what is left.")
    size = path.stat().st_size
    return ok("database", f"{path} passes SQLite's quick_check ({size / 2**20:.1f} MiB).")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_") and r[0] != "alembic_version"}


def _has_tables(conn: sqlite3.Connection) -> bool:
    return bool(_tables(conn))


def _stamped(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: before migrations, or empty
        return None
    return str(row[0]) if row else None


def _schema(conn: sqlite3.Connection) -> Check:
    have = _tables(conn)
    new_tables = [t.name for t in metadata.sorted_tables if t.name not in have]
    new_columns: list[str] = []
    cannot: list[str] = []
    unknown: list[str] = sorted(have - set(metadata.tables))
    for table in metadata.sorted_tables:
        if table.name not in have:
            continue
        columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{table.name}")')}
        for col in table.columns:
            if col.name not in columns:
                (new_columns if _addable(col) else cannot).append(f"{table.name}.{col.name}")
        unknown += sorted(f"{table.name}.{c}" for c in columns - set(table.columns.keys()))
    if cannot:
        return fail("schema", f"the database lacks {', '.join(cannot)}, which flashml serve cannot add (NOT NULL "
                              "with no default): it would stop at start. Restore a backup made by this FlashML "
                              "version, or upgrade with the release notes' steps.")
    if unknown:
        return warn("schema", f"the database has {', '.join(unknown)}, which this FlashML does not know: a newer "
                              "FlashML made it. Running this older one on it may lose what those hold.")
    pending = []
    if new_tables:
        pending.append(f"{_count(len(new_tables), 'table')} will be created ({', '.join(new_tables)})")
    if new_columns:
        pending.append(f"{_count(len(new_columns), 'column')} will be added ({', '.join(new_columns)})")
    if pending:
        return ok("schema", " and ".join(pending) + " at the next start of flashml serve; nothing else differs.")
    return ok("schema", f"the tables match this FlashML ({len(metadata.tables)} tables).")


def _addable(col: Column) -> bool:
    """Whether flashml.db.engine can ADD COLUMN it: nullable, or NOT NULL with a server default clause."""
    return col.nullable or isinstance(col.server_default, DefaultClause)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
