"""Console sessions: one row per sign-in, keyed by the SHA-256 of the cookie token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.schema import sessions, users


async def insert_session(engine: AsyncEngine, *, session_id: str, user_id: int, csrf_token: str, now: float,
                         expires_at: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(sessions).values(id=session_id, user_id=user_id, created_at=now,
                                                   expires_at=expires_at, last_seen_at=now, csrf_token=csrf_token))


async def get_session(engine: AsyncEngine, session_id: str) -> dict[str, Any] | None:
    """The session with its user's name, role and disabled flag; None when there is no such session."""
    query = (select(sessions, users.c.name, users.c.role, users.c.disabled)
             .join(users, users.c.id == sessions.c.user_id).where(sessions.c.id == session_id))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def touch_session(engine: AsyncEngine, session_id: str, *, now: float, expires_at: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(sessions).where(sessions.c.id == session_id).values(
            last_seen_at=now, expires_at=expires_at))


async def delete_session(engine: AsyncEngine, session_id: str, *, announce: Change | None = None) -> bool:
    async with engine.begin() as conn:
        res = await conn.execute(delete(sessions).where(sessions.c.id == session_id))
        if res.rowcount > 0:
            await write(conn, announce)
    return res.rowcount > 0


async def delete_expired(engine: AsyncEngine, now: float) -> int:
    async with engine.begin() as conn:
        res = await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
    return res.rowcount


async def delete_user_sessions(engine: AsyncEngine, user_name: str, *, keep: str | None = None,
                               announce: Change | None = None) -> int:
    """End every session of user ``user_name`` (all but session ``keep``), with ``announce`` (the change feed's row)
    in the same transaction; how many ended."""
    query = delete(sessions).where(sessions.c.user_id.in_(select(users.c.id).where(users.c.name == user_name)))
    if keep:
        query = query.where(sessions.c.id != keep)
    async with engine.begin() as conn:
        res = await conn.execute(query)
        await write(conn, announce)
    return res.rowcount
