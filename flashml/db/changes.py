"""The change feed: one row per change that other nodes sharing the database must apply (flashml/cluster reads it).

Rows are only appended; each node remembers the last id it applied. Ids come from the database (SQLite's rowid,
PostgreSQL's sequence), so they grow with commit order on SQLite; on PostgreSQL a transaction that took an id
earlier may commit after a later one, which the reader covers by reading again a short window behind its mark
(flashml.cluster.node).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flashml.db.schema import changes

# What changed; the other columns say which thing.
VERSION = "version"  # a version's row changed: ready, failed, archived or restored, pinned, its serving config
VERSION_DELETED = "version_deleted"
MODEL_DELETED = "model_deleted"
ALIAS = "alias"  # set, rolled back (by a person or the canary guard) or deleted
KEY = "key"  # revoked, or its limits changed
USER_SESSIONS = "user_sessions"  # a user's sessions ended (disabled, deleted, password reset)
SCHEDULE = "schedule"  # a job schedule added, changed or removed
PREDICTION_LOG = "prediction_log"  # a model's prediction log settings
DRIFT = "drift"  # a model's drift settings
RESPONSE_CACHE = "response_cache"  # a model's response cache settings
SIGN_IN_FAILED = "sign_in_failed"  # a wrong password from an address at an account (name): every brake counts it
SIGN_IN_FORGIVEN = "sign_in_forgiven"  # the right password from that address: its guesses there are forgiven
KINDS = (VERSION, VERSION_DELETED, MODEL_DELETED, ALIAS, KEY, USER_SESSIONS, SCHEDULE, PREDICTION_LOG, DRIFT,
         RESPONSE_CACHE, SIGN_IN_FAILED, SIGN_IN_FORGIVEN)
PAGE = 500  # changes read per query


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the feed: what changed, the node that changed it, and which thing (the fields that apply)."""

    kind: str
    node: str
    model: str | None = None
    number: int | None = None
    name: str | None = None
    key_id: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown change kind {self.kind!r}")


async def write(conn: AsyncConnection, change: Change | None) -> None:
    """Append ``change`` (if any) inside ``conn``'s transaction.

    The db functions that store a change take the row that announces it (their ``announce``) and write both in one
    transaction: a node that dies, or loses the database, between the two would otherwise leave a change stored
    that no other node ever hears of (a revoked key still cached, an alias moved on one node only).
    """
    if change is not None:
        await conn.execute(insert(changes).values(at=time.time(), **asdict(change)))


async def emit(engine: AsyncEngine, kind: str, *, node: str, model: str | None = None,
               number: int | None = None, name: str | None = None, key_id: int | None = None,
               address: str | None = None) -> None:
    """Append one change in a transaction of its own: for a change that stores nothing else (a user's cached
    sessions to read again, a failed sign-in). A change that stores something uses ``write`` in its transaction."""
    async with engine.begin() as conn:
        await write(conn, Change(kind, node, model=model, number=number, name=name, key_id=key_id, address=address))


async def since(engine: AsyncEngine, after_id: int, limit: int = PAGE) -> list[dict[str, Any]]:
    """Changes with an id above ``after_id``, oldest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(changes).where(changes.c.id > after_id).order_by(changes.c.id)
                                   .limit(limit))).mappings().all()
    return [dict(r) for r in rows]


async def latest_id(engine: AsyncEngine) -> int:
    """The newest change's id (0 for none): a node starting now has already read everything up to it."""
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(changes.c.id), 0)))).scalar_one())


async def recent(engine: AsyncEngine, after: float) -> tuple[int, list[int]]:
    """(the newest id of the changes made before ``after``, the ids above it): where a starting node reads from,
    and the changes it has seen already (what it loads includes them)."""
    async with engine.connect() as conn:
        floor = int((await conn.execute(select(func.coalesce(func.max(changes.c.id), 0))
                                        .where(changes.c.at < after))).scalar_one())
        ids = (await conn.execute(select(changes.c.id).where(changes.c.id > floor))).scalars().all()
    return floor, [int(i) for i in ids]


async def prune(engine: AsyncEngine, older_than: float) -> int:
    """Remove changes made before ``older_than`` (UNIX time); how many."""
    async with engine.begin() as conn:
        res = await conn.execute(delete(changes).where(changes.c.at < older_than))
    return int(res.rowcount or 0)
