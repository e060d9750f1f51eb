"""Schema changes through Alembic: the migrations ship inside the package (flashml/db/migrations) and run at every
start of ``flashml serve`` and by ``flashml db upgrade``, on SQLite and PostgreSQL alike.

A SQLite database made by a FlashML from before migrations has the tables but no ``alembic_version``. It is
adopted once: brought to the baseline's tables (a release older than the baseline may lack some tables and
columns, which the previous releases added at start), stamped at the baseline revision, then upgraded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import DefaultClause, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("flashml")

MIGRATIONS = Path(__file__).with_name("migrations")
REACH_TIMEOUT_S = 15.0
BASELINE = "0001"  # the schema of the last release without migrations (git a17f706)
# Two nodes starting at once on one PostgreSQL: the first migrates, the second waits for it and finds the head.
_PG_LOCK = 0x666C6D6C  # "flml"


@dataclass(frozen=True)
class Revision:
    current: str | None  # None: a new database, or one from before migrations (pre_alembic)
    head: str
    pre_alembic: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def described(self) -> str:
        """Where the database stood, for a sentence: "from before migrations", "at revision N" or "empty"."""
        if self.pre_alembic:
            return "from before migrations"
        return f"at revision {self.current}" if self.current else "empty"


def config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn  # env.py runs on this connection, inside its transaction
    return cfg


@functools.cache  # the revisions ship with the package: read once
def head() -> str:
    rev = ScriptDirectory.from_config(config()).get_current_head()
    if rev is None:  # the package ships its revisions: never expected
        raise RuntimeError(f"no Alembic revisions in {MIGRATIONS}")
    return rev


@functools.cache
def known() -> frozenset[str]:
    """Every revision this FlashML ships (a database at another one was made by a newer FlashML)."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(config()).walk_revisions())


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision (adopting a database from before migrations first)."""
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade)


async def revision(engine: AsyncEngine) -> Revision:
    """The database's revision and this FlashML's head, changing nothing."""
    async with engine.connect() as conn:
        return await conn.run_sync(_revision)


class DatabaseUnreachableError(RuntimeError):
    """The database named by the settings does not answer; the message is a sentence for people (no password)."""


async def reach(target: Path | str) -> Revision:
    """Connect to the database once and read its revision, or raise DatabaseUnreachableError saying why.

    ``flashml serve`` calls it before starting, so a wrong database_url is one clear sentence, not a traceback
    from the worker; ``flashml doctor`` reports it.
    """
    from flashml.db.engine import create_engine, shown

    engine = create_engine(target)
    try:
        return await asyncio.wait_for(revision(engine), REACH_TIMEOUT_S)
    except Exception as exc:
        reason = (f"no answer in {REACH_TIMEOUT_S:.0f} s" if isinstance(exc, TimeoutError)
                  else getattr(exc, "strerror", None) or type(exc).__name__)
        raise DatabaseUnreachableError(
            f"The database {shown(target)} cannot be reached ({reason}). Check that it runs and that this host may "
            "connect, and the user, password (PGPASSWORD or ~/.pgpass) and database name.") from None
    finally:
        await engine.dispose()


def _revision(conn: Connection) -> Revision:
    current = _current(conn)
    return Revision(current, head(), current is None and _pre_alembic(conn))


def _current(conn: Connection) -> str | None:
    """The stamped revision, read directly: Alembic's MigrationContext logs two INFO lines each time it is made,
    which every start and every CLI command would print while nothing is to be done."""
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _pre_alembic(conn: Connection) -> bool:
    """FlashML's tables (any of them: early releases had fewer) and no alembic_version."""
    from flashml.db.migrations.baseline_schema import metadata

    names = set(inspect(conn).get_table_names())
    return "alembic_version" not in names and bool(names & set(metadata.tables))


def _upgrade(conn: Connection) -> None:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # SQLite's table rebuilds (batch migrations) drop and re-create tables: with foreign keys on, dropping a
        # parent would cascade its children away. The pragma only changes outside a transaction.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        # The write lock first: processes starting at once on a new file migrate one after the other
        # (busy_timeout waits), and the later ones find the head.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:  # PostgreSQL: the same, through an advisory lock held until the transaction ends
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    try:
        _migrate(conn)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _migrate(conn: Connection) -> None:
    before = _revision(conn)
    if before.up_to_date:
        return
    cfg = config(conn)
    if before.pre_alembic:
        _adopt(conn)
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
    # Alembic's own INFO lines are silenced with the other chatty libraries (flashml.app): one line says it.
    log.info("Migrated the database (%s) to schema revision %s", before.described, head())


def _adopt(conn: Connection) -> None:
    """Give a database from before migrations the baseline's tables and columns (what those releases did at start)."""
    from flashml.db.migrations.baseline_schema import metadata

    metadata.create_all(conn)  # the missing tables only
    for table in metadata.sorted_tables:
        _add_missing_columns(conn, table)


def _add_missing_columns(conn: Connection, table: Table) -> None:
    """ADD COLUMN what a table made by a release older than the baseline lacks. Idempotent.

    A NOT NULL column needs a server_default in the baseline schema to be added this way.
    """
    have = {col["name"] for col in inspect(conn).get_columns(table.name)}
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
