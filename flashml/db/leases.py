"""Named leases: one node at a time holds each (the leader of background work), until it stops renewing it.

Taking and renewing are one compare-and-set UPDATE, so two nodes racing for a free lease cannot both win.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.schema import leases
from flashml.db.upsert import upsert


async def hold(engine: AsyncEngine, name: str, holder: str, now: float, ttl_s: float) -> bool:
    """Take the lease if it is free or expired, or renew it if ``holder`` has it; whether ``holder`` holds it now."""
    async with engine.begin() as conn:
        await conn.execute(upsert(engine, leases).values(name=name, holder=holder, until=now + ttl_s)
                           .on_conflict_do_nothing(index_elements=[leases.c.name]))
        res = await conn.execute(update(leases)
                                 .where(leases.c.name == name,
                                        or_(leases.c.holder == holder, leases.c.until < now))
                                 .values(holder=holder, until=now + ttl_s))
    return bool(res.rowcount)


async def release(engine: AsyncEngine, name: str, holder: str) -> None:
    """Give the lease up (a clean stop), so another node takes it at its next try instead of after the ttl."""
    async with engine.begin() as conn:
        await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


async def holder(engine: AsyncEngine, name: str, now: float) -> str | None:
    """Who holds the lease now (None: nobody, or it ran out)."""
    async with engine.connect() as conn:
        return (await conn.execute(select(leases.c.holder).where(leases.c.name == name, leases.c.until >= now))
                ).scalar()
