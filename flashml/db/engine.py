"""Open the metadata database: SQLite in WAL mode through aiosqlite."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import DefaultClause, Table, event, text
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from flashml.db.schema import metadata


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the CLI write (keys, users) while the server reads; busy_timeout waits out a writer.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


async def open_database(path: Path) -> AsyncEngine:
    """Create the engine and the tables that are missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private(path)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    event.listen(engine.sync_engine, "connect", _on_connect)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for table in metadata.sorted_tables:
            await conn.run_sync(_add_missing_columns, table)
    return engine


def inserted_id(res: CursorResult[Any]) -> int:
    """The integer primary key of the one row an INSERT just added."""
    key = res.inserted_primary_key
    if key is None:  # every table has an integer key and every insert adds one row: never expected
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


def _private(path: Path) -> None:
    """The database file 0600, whatever the umask: it holds password hashes, sessions and the audit log.

    Made empty before SQLite opens it (SQLite takes an empty file as a new database), because SQLite gives its
    -wal, -shm and -journal files the database file's mode. Files an older FlashML made looser are tightened.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except FileNotFoundError:
            continue


def _add_missing_columns(conn: Connection, table: Table) -> None:
    """Bring a table made by an older FlashML up to date: ADD COLUMN what it lacks. Idempotent.

    create_all makes missing tables only; this covers the columns added since. A NOT NULL column needs a
    server_default in the schema to be added this way.
    """
    have = {row[1] for row in conn.execute(text(f'PRAGMA table_info("{table.name}")'))}
    for col in table.columns:
        if col.name in have:
            continue
        ddl = f'ALTER TABLE "{table.name}" ADD COLUMN "{col.name}" {col.type.compile(conn.dialect)}'
        if isinstance(col.server_default, DefaultClause):
            ddl += f" DEFAULT {col.server_default.arg}"
        elif col.server_default is not None:  # a FetchedValue has no SQL text to give ADD COLUMN
            raise TypeError(f"{table.name}.{col.name}: only a server_default clause can be added")
        if not col.nullable:
            ddl += " NOT NULL"
        conn.execute(text(ddl))
