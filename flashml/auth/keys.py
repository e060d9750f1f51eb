"""Create, list, revoke and check API keys.

Keys are cached for CACHE_TTL_S after a request reads one. A node that revokes a key or changes its limits
drops it from its cache at once and writes a KEY change to the shared feed; the other nodes sharing the database
drop it when they read that change (``apply_change``, within about a sync interval), and CACHE_TTL_S bounds
the rest (a process that reads no feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.limits import KeyLimiter
from flashml.auth.principal import KEY_ROLES, Principal
from flashml.auth.records import KeyRecord, NewKeyRecord
from flashml.auth.tokens import hash_token, new_token, parse_token, same_hash
from flashml.db import audit
from flashml.db import changes as feed
from flashml.db import keys as db
from flashml.db.outage import Outage
from flashml.errors import BadRequestError, KeyNotFoundError, UnauthorizedError, UnavailableError

T = TypeVar("T")

CACHE_TTL_S = 10.0  # a key revoked elsewhere stops working within this time even where no change feed is read
# Reading a key from the database: a key this node knows waits at most STALE_LOOKUP_S before its cached record
# answers instead (a database that hangs, as behind a network dropping packets, must not stop inference); a key it
# has never seen waits at most LOOKUP_S, then 503.
STALE_LOOKUP_S = 1.0
LOOKUP_S = 10.0
# How often usage is written and the day's totals read back (KeyLimiter.flush): with several nodes, how late a
# node learns the others' requests toward a daily quota. The server passes its sync_interval_s.
FLUSH_EVERY_S = 15.0
log = logging.getLogger("flashml")
_NAME = re.compile(r"^[\w .@:-]{1,128}$")
LIMIT_FIELDS = ("rate_limit_per_s", "burst", "daily_quota", "weight")
MAX_WEIGHT = 100
MAX_COUNT = 10**12  # burst and daily quota: far past any real use, and inside SQLite's 64-bit integers


def check_limits(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate limit values (None clears one; a cleared weight is 1); the values to store, or 400 bad_limits."""
    unknown = sorted(set(changes) - set(LIMIT_FIELDS))
    if unknown:
        raise BadRequestError(f"Unknown limit {unknown[0]!r}; use: {', '.join(LIMIT_FIELDS)}.", code="bad_limits")
    out: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            out[field] = 1 if field == "weight" else None
            continue
        if field == "rate_limit_per_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0 < value <= MAX_COUNT:
                raise BadRequestError(f"rate_limit_per_s is requests per second, a number above 0 and at most "
                                      f"{MAX_COUNT:,} (or null: no limit).", code="bad_limits",
                                      details={"field": field})
            out[field] = float(value)
            continue
        high = MAX_WEIGHT if field == "weight" else MAX_COUNT
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise BadRequestError(f"{field} must be a whole number from 1 to {high:,}.", code="bad_limits",
                                  details={"field": field})
        out[field] = value
    return out


async def _within(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """``work``'s result, or TimeoutError after ``seconds`` without waiting for it to stop: cancelling a query on a
    hung connection can itself wait on the network, so it finishes (or fails) in the background instead."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its error, if any, is not logged
        raise TimeoutError
    return task.result()


class KeyService:
    """``node`` names this process in the change feed (changes it writes are applied by the other nodes)."""

    def __init__(self, engine: AsyncEngine, limiter: KeyLimiter | None = None, *, node: str = "",
                 flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.engine = engine
        self.limiter = limiter if limiter is not None else KeyLimiter(engine)
        self.node = node
        self.flush_every_s = flush_every_s
        self._cache: dict[str, tuple[Principal, float]] = {}  # token hash -> (principal, valid until)
        self._last_used: dict[str, float] = {}
        self._flusher: asyncio.Task | None = None
        self._flush_outage = Outage("key usage", "limits go on from this node's counts, retrying every round", log)

    async def create(self, *, name: str, role: str, models: list[str] | None, actor: str,
                     rate_limit_per_s: float | None = None, burst: int | None = None,
                     daily_quota: int | None = None, weight: int = 1) -> NewKeyRecord:
        """Create a key; the answer holds the secret token, which is never shown again."""
        limits = check_limits({"rate_limit_per_s": rate_limit_per_s, "burst": burst, "daily_quota": daily_quota,
                               "weight": weight})
        if role not in KEY_ROLES:
            raise BadRequestError(f"Unknown role {role!r}; use one of: {', '.join(KEY_ROLES)}.", code="bad_role")
        if not _NAME.match(name or ""):
            raise BadRequestError("A key name is 1 to 128 letters, digits, spaces or . @ : - _.", code="bad_name")
        if models is not None:
            models = sorted({m.strip() for m in models if m.strip()}) or None
            if role == "admin" and models:
                raise BadRequestError("An admin key reaches every model; limit only inference keys.",
                                      code="bad_models")
        token, key_id = new_token()
        record = await db.insert_key(self.engine, key_id=key_id, secret_hash=hash_token(token), name=name,
                                     role=role, models=models, created_by=actor, limits=limits)
        detail = {"name": name, "role": role, **{k: v for k, v in limits.items() if v is not None}}
        await audit.record(self.engine, actor, "key.create", f"key:{record['id']}", detail)
        return NewKeyRecord(**record, used_today=0, token=token)

    async def list(self) -> list[KeyRecord]:
        records = await db.list_keys(self.engine)
        day = self.limiter.today
        used = await db.usage_on(self.engine, day)
        return [KeyRecord(**r, used_today=used.get(r["id"], 0) + self.limiter.pending_today(r["id"])) for r in records]

    async def get(self, ident: int) -> KeyRecord:
        record = await db.get_key(self.engine, ident)
        if record is None:
            raise KeyNotFoundError(ident)
        return await self._with_usage(record)

    async def _with_usage(self, record: dict[str, Any]) -> KeyRecord:
        day = self.limiter.today
        used = (await db.usage_on(self.engine, day, record["id"])).get(record["id"], 0)
        return KeyRecord(**record, used_today=used + self.limiter.pending_today(record["id"]))

    async def set_limits(self, ident: int, *, actor: str, **changes: Any) -> KeyRecord:
        """Change some limits of a key (only the fields given; None clears one). Takes effect at once here, on
        the other nodes when they read the KEY change."""
        if not changes:
            raise BadRequestError(f"Give at least one of: {', '.join(LIMIT_FIELDS)}.", code="bad_limits")
        values = check_limits(changes)
        record = await db.update_limits(self.engine, ident, values,
                                        announce=feed.Change(feed.KEY, self.node, key_id=ident))
        if record is None:
            raise KeyNotFoundError(ident)
        self._forget(ident)
        await audit.record(self.engine, actor, "key.limits", f"key:{ident}", {"name": record["name"], **values})
        return await self._with_usage(record)

    def admit(self, principal: Principal) -> None:
        """Count one inference request of this key, or raise 429 (rate_limited, quota_exceeded).

        Limits and quotas belong to API keys; a console session (the playground) has no key to count against.
        """
        if principal.is_session:
            return
        self.limiter.admit(principal)

    def _forget(self, ident: int) -> None:
        """Drop cached principals of this key, so the next request reads the key again."""
        self._cache = {h: v for h, v in self._cache.items() if v[0].key_pk != ident}

    async def apply_change(self, change: dict[str, Any]) -> None:
        """A KEY change another node made (revoked, limits changed): drop the key, the next request reads it."""
        if change.get("key_id") is not None:
            self._forget(int(change["key_id"]))

    async def revoke(self, ident: int, *, actor: str) -> KeyRecord:
        record = await db.revoke_key(self.engine, ident, announce=feed.Change(feed.KEY, self.node, key_id=ident))
        if record is None:
            raise KeyNotFoundError(ident)
        self._forget(ident)
        await audit.record(self.engine, actor, "key.revoke", f"key:{ident}", {"name": record["name"]})
        return KeyRecord(**record)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer`` header, or 401."""
        if not authorization:
            raise UnauthorizedError("This endpoint needs an API key: send 'Authorization: Bearer <key>'.",
                                    code="missing_key")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("Send the API key as 'Authorization: Bearer <key>'.", code="missing_key")
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            principal = hit[0]
        else:
            try:
                principal = await _within(self._lookup(token, digest), LOOKUP_S if hit is None else STALE_LOOKUP_S)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                if hit is None:
                    if isinstance(exc, TimeoutError):
                        raise UnavailableError("The database did not answer in time to check this API key; try "
                                               "again shortly.", code="database_unavailable") from None
                    raise
                # The database is out of reach: a key known here keeps working (nobody can revoke it meanwhile,
                # a revocation is a write); it is read again once the database answers.
                principal = hit[0]
            self._cache[digest] = (principal, now + CACHE_TTL_S)
        self._last_used[principal.key_id] = time.time()
        return principal

    async def _lookup(self, token: str, digest: str) -> Principal:
        key_id = parse_token(token)
        row = await db.get_key_by_key_id(self.engine, key_id) if key_id else None
        if row is None or not same_hash(row["secret_hash"], digest):
            raise UnauthorizedError("The API key is not valid.", code="invalid_key")
        if row["revoked_at"] is not None:
            raise UnauthorizedError("The API key has been revoked.", code="revoked_key")
        models = frozenset(row["models"]) if row["models"] is not None else None
        return Principal(row["id"], row["key_id"], row["name"], row["role"], models, row["created_by"],
                         rate_limit_per_s=row["rate_limit_per_s"], burst=row["burst"],
                         daily_quota=row["daily_quota"], weight=row["weight"] if row["weight"] is not None else 1)

    async def flush(self) -> None:
        pending, self._last_used = self._last_used, {}
        try:
            await db.touch_keys(self.engine, pending)
        except BaseException:
            self._last_used = {**pending, **self._last_used}  # written with the next flush
            raise
        finally:
            await self.limiter.flush()

    async def start(self) -> None:
        await self.limiter.load()
        self._flusher = asyncio.create_task(self._flush_loop())

    async def stop(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every_s)
            try:
                await self.flush()
            except Exception as exc:  # a busy or unreachable database must not kill the loop; next turn retries
                self._flush_outage.failed(exc)
            else:
                self._flush_outage.worked()
