"""Open the metadata database at the schema's newest revision: the embedded SQLite file (WAL, through aiosqlite)
or PostgreSQL (through asyncpg), which several nodes can share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from flashml.settings import Settings

# PostgreSQL's pool, per process: the request path reads keys and sessions from caches, so a node needs a few
# connections for writes and the background loops; 10 + 10 stays far below PostgreSQL's default
# max_connections (100) even with several nodes. pre_ping drops connections a database restart has closed.
PG_POOL = {"pool_size": 10, "max_overflow": 10, "pool_timeout": 30, "pool_recycle": 1800, "pool_pre_ping": True}


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the CLI write (keys, users) while the server reads; busy_timeout waits out a writer.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def database_target(settings: Settings) -> Path | str:
    """What the settings name: the URL of database_url, or the SQLite file in data_dir when it is empty."""
    return settings.database_url or settings.db_path


def shown(target: Path | str) -> str:
    """The database for people to read: a file's path, or the URL without its password."""
    path = sqlite_file(target)
    if path is not None:
        return str(path)
    return make_url(str(target)).render_as_string(hide_password=True)


def sqlite_file(target: Path | str) -> Path | None:
    """The SQLite file a target names; None for a server database."""
    if isinstance(target, Path):
        return target
    url = make_url(target)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def create_engine(target: Path | str) -> AsyncEngine:
    """The engine alone, with no schema change (``flashml db current`` reads through it)."""
    path = sqlite_file(target)
    if path is not None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(path)
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        event.listen(engine.sync_engine, "connect", _on_connect)
        return engine
    url = make_url(str(target))
    if url.get_backend_name() != "postgresql":  # settings.py refuses others first; this guards direct callers
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: SQLite or PostgreSQL")
    return create_async_engine(url, **PG_POOL)


async def open_database(target: Path | str) -> AsyncEngine:
    """Create the engine and bring the schema to the newest revision (flashml.db.migrate)."""
    from flashml.db.migrate import upgrade

    engine = create_engine(target)
    try:
        await upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def open_settings_database(settings: Settings) -> AsyncEngine:
    """The database the settings name, at the newest revision."""
    return await open_database(database_target(settings))


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
