"""Alembic's environment: the revisions run on the connection flashml.db.migrate lends, inside its transaction.

Run by the ``alembic`` command itself (a developer's ``alembic revision --autogenerate`` with a config naming
sqlalchemy.url), it opens an async engine of that URL instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from flashml.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite")  # SQLite ALTERs by rebuilding tables
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def _offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_lent = context.config.attributes.get("connection")
if context.is_offline_mode():
    _offline(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
elif _lent is not None:
    _run(_lent)
else:
    asyncio.run(_run_from_url(context.config.get_main_option("sqlalchemy.url") or ""))
