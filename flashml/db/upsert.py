"""INSERT ... ON CONFLICT DO UPDATE for both engines: SQLite and PostgreSQL spell it the same way in SQLAlchemy,
each through its own dialect's insert()."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def upsert(engine: AsyncEngine | AsyncConnection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An insert into ``table`` that can take ``.on_conflict_do_update``, in the engine's dialect."""
    name = engine.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise ValueError(f"no upsert for the {name} dialect")
