"""The audit log: who did what, and when."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.schema import audit


async def record(engine: AsyncEngine, actor: str, action: str, target: str = "",
                 detail: dict[str, Any] | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(audit).values(at=time.time(), actor=actor, action=action, target=target,
                                                detail=detail))


async def list_events(engine: AsyncEngine, limit: int = 100) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))).mappings().all()
    return [dict(r) for r in rows]
