"""API key records. Only a hash of each secret is stored."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.engine import inserted_id
from flashml.db.fit import fit
from flashml.db.schema import api_keys, key_usage
from flashml.db.upsert import upsert

LIMIT_COLUMNS = ("rate_limit_per_s", "burst", "daily_quota", "weight")
PUBLIC_COLUMNS = ("id", "key_id", "name", "role", "models", "created_by", "created_at", "last_used_at",
                  "revoked_at", *LIMIT_COLUMNS)


def _public(row: Any) -> dict[str, Any]:
    return {c: row[c] for c in PUBLIC_COLUMNS}


async def insert_key(engine: AsyncEngine, *, key_id: str, secret_hash: str, name: str, role: str,
                     models: list[str] | None, created_by: str, limits: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    limits = {"rate_limit_per_s": None, "burst": None, "daily_quota": None, "weight": 1, **(limits or {})}
    values = fit(api_keys, dict(key_id=key_id, secret_hash=secret_hash, name=name, role=role, models=models,
                                created_by=created_by, created_at=time.time(), last_used_at=None, revoked_at=None,
                                **limits))
    async with engine.begin() as conn:
        res = await conn.execute(insert(api_keys).values(**values))
    return _public({"id": inserted_id(res), **values})


async def get_key_by_key_id(engine: AsyncEngine, key_id: str) -> dict[str, Any] | None:
    """The whole record, secret hash included, for authentication."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).mappings().first()
    return dict(row) if row else None


async def list_keys(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_keys).order_by(api_keys.c.id))).mappings().all()
    return [_public(r) for r in rows]


async def get_key(engine: AsyncEngine, ident: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == ident))).mappings().first()
    return _public(row) if row else None


async def revoke_key(engine: AsyncEngine, ident: int, *, announce: Change | None = None) -> dict[str, Any] | None:
    """Revoke a key (``announce``: the change feed's row, in the same transaction); its record, None if unknown."""
    async with engine.begin() as conn:
        res = await conn.execute(update(api_keys).where(api_keys.c.id == ident, api_keys.c.revoked_at.is_(None))
                                 .values(revoked_at=time.time()))
        if res.rowcount > 0:
            await write(conn, announce)
    return await get_key(engine, ident)


async def touch_keys(engine: AsyncEngine, last_used: dict[str, float]) -> None:
    """Record last-used times, collected in memory so that a request never waits on a write."""
    if not last_used:
        return
    async with engine.begin() as conn:
        for key_id, at in last_used.items():
            await conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(last_used_at=at))


async def update_limits(engine: AsyncEngine, ident: int, changes: dict[str, Any], *,
                        announce: Change | None = None) -> dict[str, Any] | None:
    """Set some of a key's limit columns (``announce``: the change feed's row, in the same transaction); the
    updated record, or None for an unknown key."""
    async with engine.begin() as conn:
        res = await conn.execute(update(api_keys).where(api_keys.c.id == ident).values(**changes))
        if res.rowcount > 0:
            await write(conn, announce)
    return await get_key(engine, ident)


async def usage_on(engine: AsyncEngine, day: str, key_pk: int | None = None) -> dict[int, int]:
    """Admitted requests per key on one UTC day (YYYY-MM-DD), from key_usage."""
    query = select(key_usage.c.key_pk, key_usage.c.count).where(key_usage.c.day == day)
    if key_pk is not None:
        query = query.where(key_usage.c.key_pk == key_pk)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {pk: count for pk, count in rows}


async def add_usage(engine: AsyncEngine, increments: dict[tuple[int, str], int]) -> None:
    """Add counted requests to key_usage: {(key_pk, day): n}."""
    if not increments:
        return
    stmt = upsert(engine, key_usage)
    stmt = stmt.on_conflict_do_update(index_elements=[key_usage.c.key_pk, key_usage.c.day],
                                      set_={"count": key_usage.c.count + stmt.excluded.count})
    async with engine.begin() as conn:
        await conn.execute(stmt, [{"key_pk": pk, "day": day, "count": n} for (pk, day), n in increments.items()])
