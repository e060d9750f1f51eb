"""Per-API-key limits: a token bucket for the rate, a counter per UTC day for the quota.

Everything a request touches is in memory (a few dict lookups and some arithmetic); the daily counts are
loaded from ``key_usage`` at start and the increments are written back by KeyService's flush loop and at stop.
The limits themselves come from the Principal, so a change reaches the limiter as soon as the key cache
hands out a fresh Principal.

Several nodes sharing one database share each key's limits:
- the rate: each node's bucket holds ``burst / N`` tokens (rounded up, at least 1) and refills at ``rate / N``,
  where N is the number of live nodes (``nodes``). Behind a load balancer that spreads requests evenly the
  whole cluster admits the key's rate, and a burst of at most ``burst + N - 1`` (the rounding up);
- the daily quota: every flush adds this node's increments to ``key_usage`` and reads back the day's totals of
  every key, so each node counts what the others admitted up to their last flush. Between two flushes a node
  admits at most its share of what was left at the last read (``(quota - total) / N``, rounded up), so the
  nodes cannot each spend the whole rest of a quota before they compare counts. What can still pass the quota
  comes from nodes whose last read is older than another's flush: at most the shares of one round (about
  ``(quota - total) / N`` per node), admitted within about two flush intervals.
If the database cannot be reached, a node goes on deciding on what it knows (the last totals it read plus what
it counted since, and its share of the rest) and keeps its increments for the next flush, which retries them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.principal import Principal
from flashml.db import keys as db
from flashml.errors import TooManyRequestsError

DAY_S = 86400.0


def effective_burst(rate: float, burst: int | None) -> int:
    """The bucket's capacity: the key's burst, or max(1, ceil(rate))."""
    return burst if burst is not None else max(1, math.ceil(rate))


def node_share(capacity: int, nodes: int) -> int:
    """One node's part of a burst shared by ``nodes``: rounded up, so a small burst still admits one request on
    each node (the cluster's burst is then at most ``capacity + nodes - 1``)."""
    return max(1, math.ceil(capacity / nodes))


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class KeyLimiter:
    """Admit or refuse one inference request of a key. ``clock`` is monotonic, ``wall`` is UNIX time (UTC)."""

    def __init__(self, engine: AsyncEngine | None = None, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, nodes: Callable[[], int] = lambda: 1) -> None:
        self.engine = engine
        self.clock = clock
        self.wall = wall
        self.nodes = nodes  # how many nodes share the keys' limits now (the live nodes; 1 alone)
        self._buckets: dict[int, _Bucket] = {}
        self._day = ""
        self._day_end = -math.inf  # UNIX time of the next UTC midnight
        self._counts: dict[int, int] = {}  # key_pk -> admitted requests today (stored + pending)
        self._pending: dict[tuple[int, str], int] = {}  # (key_pk, day) -> not yet in key_usage
        # (key name, "rate_limit" | "quota") -> requests refused since start, for GET /metrics: counted only on
        # the refusing path, so an admitted request pays nothing for it.
        self.refusals: dict[tuple[str, str], int] = {}

    # ---- per request ----

    def admit(self, principal: Principal) -> None:
        """Count one request of this key, or raise TooManyRequestsError (429 with Retry-After)."""
        pk = principal.key_pk
        now_wall = self.wall()
        if now_wall >= self._day_end:
            self._roll_day(now_wall)
        count = self._counts.get(pk, 0)
        quota = principal.daily_quota
        live = max(1, self.nodes()) if quota is not None or principal.rate_limit_per_s is not None else 1
        if quota is not None:
            if count >= quota:
                self._refused(principal, "quota")
                raise TooManyRequestsError(
                    f"This API key has used its daily quota of {quota} requests; it resets at 00:00 UTC.",
                    code="quota_exceeded", retry_after_s=self._day_end - now_wall,
                    details={"daily_quota": quota, "resets_at": self._day_end})
            if live > 1:  # alone, the share below is the whole rest of the quota: nothing more to check
                self._quota_share(principal, quota, count, live, now_wall)
        rate = principal.rate_limit_per_s
        if rate is not None:
            capacity = effective_burst(rate, principal.burst)
            node_rate, node_capacity = rate / live, float(node_share(capacity, live))
            now = self.clock()
            bucket = self._buckets.get(pk)
            if bucket is None:
                bucket = self._buckets[pk] = _Bucket(node_capacity, now)
            else:
                bucket.tokens = min(node_capacity, bucket.tokens + (now - bucket.at) * node_rate)
                bucket.at = now
            if bucket.tokens < 1.0:
                self._refused(principal, "rate_limit")
                raise TooManyRequestsError(
                    f"This API key is limited to {rate:g} requests per second (burst {capacity}); slow down.",
                    code="rate_limited", retry_after_s=(1.0 - bucket.tokens) / node_rate,
                    details={"rate_limit_per_s": rate, "burst": capacity})
            bucket.tokens -= 1.0
        self._counts[pk] = count + 1
        key = (pk, self._day)
        self._pending[key] = self._pending.get(key, 0) + 1

    __call__ = admit

    def _quota_share(self, principal: Principal, quota: int, count: int, live: int, now_wall: float) -> None:
        """Refuse past this node's share of what was left of the quota at its last read of the totals: the other
        nodes admit theirs meanwhile, and the next flush reads what they did."""
        unread = self._pending.get((principal.key_pk, self._day), 0)  # admitted here since the last read
        if unread >= node_share(quota - (count - unread), live):
            self._refused(principal, "quota")
            raise TooManyRequestsError(
                f"This API key has nearly used its daily quota of {quota} requests; the nodes are comparing their "
                "counts, try again in a second.", code="quota_exceeded", retry_after_s=1.0,
                details={"daily_quota": quota, "resets_at": self._day_end})

    def _refused(self, principal: Principal, reason: str) -> None:
        key = (principal.name, reason)
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def _roll_day(self, now_wall: float) -> None:
        start = datetime.fromtimestamp(now_wall, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        day = start.strftime("%Y-%m-%d")
        if day != self._day:
            self._day = day
            self._counts = {}  # a new day starts from zero; pending increments keep their own day
        self._day_end = (start + timedelta(days=1)).timestamp()

    # ---- reading ----

    @property
    def today(self) -> str:
        """The current UTC day, YYYY-MM-DD."""
        now_wall = self.wall()
        if now_wall >= self._day_end:
            self._roll_day(now_wall)
        return self._day

    def pending_today(self, key_pk: int) -> int:
        """Requests of this key today that are counted here but not yet written to key_usage."""
        return self._pending.get((key_pk, self.today), 0)

    # ---- storage ----

    async def load(self) -> None:
        """Today's counts from key_usage (plus what is counted here and not yet written)."""
        if self.engine is None:
            return
        day = self.today
        stored = await db.usage_on(self.engine, day)
        for pk, n in stored.items():
            self._counts[pk] = n + self._pending.get((pk, day), 0)

    async def flush(self) -> None:
        """Add the counted increments to key_usage and read back today's totals of every key (what other nodes
        admitted too). Increments that could not be written are kept for the next try; until then the counts
        stay the last totals read plus what this node counted since."""
        if self.engine is None:
            return
        pending, self._pending = self._pending, {}
        try:
            await db.add_usage(self.engine, pending)
        except BaseException:
            for key, n in pending.items():
                self._pending[key] = self._pending.get(key, 0) + n
            raise
        day = self.today
        stored = await db.usage_on(self.engine, day)
        # Requests admitted while the read was on its way are in _pending, not yet in what was read.
        for pk, n in stored.items():
            self._counts[pk] = n + self._pending.get((pk, day), 0)
