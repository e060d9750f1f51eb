"""Open the metadata database at the schema's newest revision: the embedded SQLite file (WAL, through aiosqlite)
or PostgreSQL (through asyncpg), which several nodes can share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncpg import exceptions as asyncpg_errors
from sqlalchemy import event
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from flashml.settings import Settings

# PostgreSQL's pool, per process: the request path reads keys and sessions from caches, so a node needs a few
# connections for writes and the background loops; 10 + 10 stays far below PostgreSQL's default
# max_connections (100) even with several nodes. pre_ping drops connections a database restart has closed.
# asyncpg's own limits: a connection attempt gives up after 10 s and a statement after 60 s, so a database that
# hangs (a network dropping packets) fails a call in bounded time instead of holding it, and its connection, forever.
PG_POOL = {"pool_size": 10, "max_overflow": 10, "pool_timeout": 30, "pool_recycle": 1800, "pool_pre_ping": True,
           "connect_args": {"timeout": 10, "command_timeout": 60}}
# What a database that cannot be reached raises (refused, hung, restarting, SQLite's lock held too long): the
# request handlers answer 503 database_unavailable for these rather than 500.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, TimeoutError)


# PostgreSQL's answers that mean "not now" rather than "wrong query" (SQLAlchemy wraps them in a plain DBAPIError):
# connection failures (class 08), the server shutting down or starting (57), out of connections or resources (53),
# the database not accepting connections (55000), and the asyncpg connection gone.
_PG_NOT_NOW = (asyncpg_errors.PostgresConnectionError, asyncpg_errors.OperatorInterventionError,
               asyncpg_errors.InsufficientResourcesError, asyncpg_errors.ObjectNotInPrerequisiteStateError,
               asyncpg_errors.InvalidCatalogNameError, asyncpg_errors.InvalidAuthorizationSpecificationError,
               asyncpg_errors.ConnectionDoesNotExistError, asyncpg_errors.InterfaceError)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or did not answer in time."""
    if isinstance(exc, UNREACHABLE) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    seen: BaseException | None = exc
    for _ in range(5):  # the driver's own error, under SQLAlchemy's and its adapter's wrappers
        if seen is None:
            return False
        if isinstance(seen, _PG_NOT_NOW):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "orig", None)
    return False


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
