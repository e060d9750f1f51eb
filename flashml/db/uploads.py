"""Direct-upload sessions: one row per `POST /api/v1/uploads`, until housekeeping removes it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.fit import fit
from flashml.db.schema import upload_sessions as t


async def create(engine: AsyncEngine, **values: Any) -> None:
    now = time.time()
    async with engine.begin() as conn:
        await conn.execute(insert(t).values(created_at=now, updated_at=now, state="pending", **fit(t, values)))


async def get(engine: AsyncEngine, upload_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(t).where(t.c.id == upload_id))).mappings().first()
    return dict(row) if row else None


async def move(engine: AsyncEngine, upload_id: str, from_state: str, to_state: str, **values: Any) -> bool:
    """Change the state only when it is still ``from_state``; False when another request got there first."""
    async with engine.begin() as conn:
        res = await conn.execute(update(t).where(t.c.id == upload_id, t.c.state == from_state)
                                 .values(state=to_state, updated_at=time.time(), **values))
    return res.rowcount == 1


async def in_state(engine: AsyncEngine, *states: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).where(t.c.state.in_(states)))).mappings().all()
    return [dict(r) for r in rows]


async def purge(engine: AsyncEngine, upload_ids: list[str]) -> None:
    if upload_ids:
        async with engine.begin() as conn:
            await conn.execute(delete(t).where(t.c.id.in_(upload_ids)))


async def set_values(engine: AsyncEngine, upload_id: str, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(t).where(t.c.id == upload_id).values(**{"updated_at": time.time(), **values}))
