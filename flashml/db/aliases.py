"""Aliases: a model's named pointers at versions, with the weight each version gets (100 for one)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.fit import fit
from flashml.db.schema import aliases, models
from flashml.db.upsert import upsert


def _query():
    return select(aliases, models.c.name.label("model")).join(models, models.c.id == aliases.c.model_id)


async def list_aliases(engine: AsyncEngine, model_name: str | None = None) -> list[dict[str, Any]]:
    """Every alias (of one model, when named), by model then alias name."""
    q = _query()
    if model_name is not None:
        q = q.where(models.c.name == model_name)
    async with engine.connect() as conn:
        rows = (await conn.execute(q.order_by(models.c.name, aliases.c.name))).mappings().all()
    return [dict(r) for r in rows]


async def put_alias(engine: AsyncEngine, model_name: str, name: str, versions: dict[str, int], *, actor: str,
                    guard: dict[str, Any] | None = None, shadow: dict[str, Any] | None = None,
                    previous: dict[str, Any] | None = None, announce: Change | None = None) -> dict[str, Any] | None:
    """Create or move an alias (``previous``: the target it had, for rollback); None when the model is gone.
    ``announce``: the change feed's row, written in the same transaction (changes.write)."""
    now = time.time()
    values = fit(aliases, {"versions": versions, "guard": guard, "shadow": shadow, "previous": previous,
                           "updated_by": actor, "updated_at": now})
    async with engine.begin() as conn:
        model_id = (await conn.execute(select(models.c.id).where(models.c.name == model_name))).scalar()
        if model_id is None:
            return None
        stmt = upsert(engine, aliases).values(model_id=model_id, name=name, **values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=[aliases.c.model_id, aliases.c.name],
                                                      set_=values))
        await write(conn, announce)
    return {"model": model_name, "name": name, **values}


async def delete_alias(engine: AsyncEngine, model_name: str, name: str, *, announce: Change | None = None) -> bool:
    """Remove an alias (and append ``announce`` in the same transaction); False when there was none."""
    async with engine.begin() as conn:
        model_id = (await conn.execute(select(models.c.id).where(models.c.name == model_name))).scalar()
        if model_id is None:
            return False
        res = await conn.execute(delete(aliases).where(aliases.c.model_id == model_id, aliases.c.name == name))
        if res.rowcount > 0:
            await write(conn, announce)
    return res.rowcount > 0
