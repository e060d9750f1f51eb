"""The audit log: who did what, and when."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.fit import fit
from flashml.db.schema import audit


async def record(engine: AsyncEngine, actor: str, action: str, target: str = "",
                 detail: dict[str, Any] | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(audit).values(**fit(audit, dict(at=time.time(), actor=actor, action=action,
                                                                  target=target, detail=detail))))


# What callers without the read_audit action (viewers, maintainers) may see: the models' own trail.
MODEL_ACTIONS = ("model.", "version.")


async def list_events(engine: AsyncEngine, limit: int = 100,
                      prefixes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The newest events first; with ``prefixes``, only actions starting with one of them."""
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if prefixes is not None:
        query = query.where(or_(*(audit.c.action.startswith(p, autoescape=True) for p in prefixes)))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(r) for r in rows]
