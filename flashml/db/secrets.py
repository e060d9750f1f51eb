"""Random keys every node sharing the database must agree on, made by the first node that needs one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.schema import cluster_secrets
from flashml.db.upsert import upsert


async def shared_secret(engine: AsyncEngine, name: str, make: Callable[[], str]) -> str:
    """The secret called ``name``: the stored one, or ``make()`` stored now (two nodes racing agree on the first)."""
    async with engine.begin() as conn:
        await conn.execute(upsert(engine, cluster_secrets).values(name=name, value=make())
                           .on_conflict_do_nothing(index_elements=[cluster_secrets.c.name]))
        return str((await conn.execute(select(cluster_secrets.c.value)
                                       .where(cluster_secrets.c.name == name))).scalar_one())
