"""Users and the one-time setup tokens."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.engine import inserted_id
from flashml.db.schema import setup_tokens, users


async def count_users(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(users))).scalar_one()


async def insert_user(engine: AsyncEngine, name: str, password_hash: str, role: str) -> dict[str, Any] | None:
    """Insert a user; None when the name is taken."""
    now = time.time()
    try:
        async with engine.begin() as conn:
            res = await conn.execute(insert(users).values(
                name=name, password_hash=password_hash, role=role, created_at=now, disabled=0))
    except IntegrityError:
        return None
    return {"id": inserted_id(res), "name": name, "role": role, "created_at": now}


async def list_users(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every user by name, without the password hash."""
    cols = (users.c.id, users.c.name, users.c.role, users.c.created_at, users.c.disabled, users.c.unlocked_at)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*cols).order_by(users.c.name))).mappings().all()
    return [dict(r) for r in rows]


async def get_user(engine: AsyncEngine, name: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(users).where(users.c.name == name))).mappings().first()
    return dict(row) if row else None


async def set_unlocked_at(engine: AsyncEngine, name: str, at: float) -> bool:
    """Stamp an admin's unlock on user ``name``; False when there is no such user."""
    async with engine.begin() as conn:
        res = await conn.execute(update(users).where(users.c.name == name).values(unlocked_at=at))
    return res.rowcount == 1


async def replace_setup_token(engine: AsyncEngine, token_hash: str, ttl_s: float) -> None:
    """Store a new setup token; older unused tokens stop working."""
    now = time.time()
    async with engine.begin() as conn:
        await conn.execute(update(setup_tokens).where(setup_tokens.c.used_at.is_(None)).values(used_at=now))
        await conn.execute(insert(setup_tokens).values(
            token_hash=token_hash, created_at=now, expires_at=now + ttl_s, used_at=None))


async def setup_token_valid(engine: AsyncEngine, token_hash: str) -> bool:
    async with engine.connect() as conn:
        row = (await conn.execute(select(setup_tokens).where(
            setup_tokens.c.token_hash == token_hash))).mappings().first()
    return bool(row and row["used_at"] is None and row["expires_at"] > time.time())


async def consume_setup_token(engine: AsyncEngine, token_hash: str, name: str, password_hash: str) -> dict | None:
    """Use the token and create the first admin in one transaction; None if the token is spent or expired."""
    now = time.time()
    async with engine.begin() as conn:
        res = await conn.execute(update(setup_tokens).where(
            setup_tokens.c.token_hash == token_hash, setup_tokens.c.used_at.is_(None),
            setup_tokens.c.expires_at > now).values(used_at=now))
        if res.rowcount != 1:
            return None
        n = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
        if n:
            return None
        res = await conn.execute(insert(users).values(
            name=name, password_hash=password_hash, role="admin", created_at=now, disabled=0))
    return {"id": inserted_id(res), "name": name, "role": "admin", "created_at": now}
