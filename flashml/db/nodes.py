"""The nodes sharing one database: each beats its heartbeat every sync_interval_s; the live ones are those seen
lately (the key limits split a key's rate among them, the console and `flashml doctor` list them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.schema import nodes
from flashml.db.upsert import upsert


async def beat(engine: AsyncEngine, node_id: str, address: str, started_at: float, now: float) -> None:
    """Say that this node is alive now (insert or update its row)."""
    stmt = upsert(engine, nodes).values(node_id=node_id, address=address, started_at=started_at, seen_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=[nodes.c.node_id],
                                      set_={"address": address, "started_at": started_at, "seen_at": now})
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def live(engine: AsyncEngine, now: float, within_s: float) -> list[dict[str, Any]]:
    """The nodes seen in the last ``within_s`` seconds, by name."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(nodes).where(nodes.c.seen_at >= now - within_s)
                                   .order_by(nodes.c.node_id))).mappings().all()
    return [dict(r) for r in rows]


async def leave(engine: AsyncEngine, node_id: str) -> None:
    """A node stopping cleanly takes itself off the list at once."""
    async with engine.begin() as conn:
        await conn.execute(delete(nodes).where(nodes.c.node_id == node_id))
