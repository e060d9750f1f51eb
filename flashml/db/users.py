"""Users and the one-time setup tokens."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.engine import inserted_id
from flashml.db.schema import sessions, setup_tokens, users

MISSING = "missing"  # what update_user and delete_user answer when there is no such user
LAST_ADMIN = "last_admin"  # ... when the change would leave no enabled admin


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


def _another_enabled_admin(name: str) -> ColumnElement[bool]:
    """True while some enabled admin other than ``name`` exists (evaluated inside the statement that uses it)."""
    others = users.alias("others")
    return select(func.count()).select_from(others).where(
        others.c.role == "admin", others.c.disabled == 0, others.c.name != name).scalar_subquery() > 0


def _keeps_an_admin(name: str) -> ColumnElement[bool]:
    """The row of ``name`` is not an enabled admin, or another enabled admin exists: taking it away is safe.

    Part of the same UPDATE or DELETE, so two admins removing each other at once cannot both succeed (SQLite runs
    one writer at a time; a read-then-write in two statements could see the same count twice)."""
    return or_(users.c.role != "admin", users.c.disabled != 0, _another_enabled_admin(name))


async def _refusal(conn, name: str) -> str:
    found = (await conn.execute(select(users.c.id).where(users.c.name == name))).first()
    return LAST_ADMIN if found else MISSING


async def update_user(engine: AsyncEngine, name: str, values: dict[str, Any]) -> dict[str, Any] | str:
    """Change ``values`` (disabled, role, password_hash) of user ``name``: the row after the change, or MISSING,
    or LAST_ADMIN when the user is the only enabled admin and the change would make them something else."""
    removes_admin = values.get("disabled") or values.get("role", "admin") != "admin"
    query = update(users).where(users.c.name == name)
    if removes_admin:
        query = query.where(_keeps_an_admin(name))
    async with engine.begin() as conn:
        res = await conn.execute(query.values(**values))
        if res.rowcount != 1:
            return await _refusal(conn, name)
        row = (await conn.execute(select(users).where(users.c.name == name))).mappings().first()
    return dict(row) if row else MISSING


async def delete_user(engine: AsyncEngine, name: str) -> str | None:
    """Delete user ``name`` and their sessions: None when done, else MISSING or LAST_ADMIN (the only enabled
    admin). The audit log keeps the name: its rows name the user, they do not point at the row."""
    doomed = select(users.c.id).where(users.c.name == name, _keeps_an_admin(name))
    async with engine.begin() as conn:  # writes first: the transaction holds the write lock from its start
        await conn.execute(delete(sessions).where(sessions.c.user_id.in_(doomed)))
        res = await conn.execute(delete(users).where(users.c.name == name, _keeps_an_admin(name)))
        if res.rowcount != 1:
            return await _refusal(conn, name)
    return None


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
