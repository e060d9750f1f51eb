"""This node among the nodes sharing one database: its heartbeat, the leader lease, and the change feed's reader.

Every ``sync_interval_s`` the node says it is alive (``nodes``), counts the live nodes, takes or renews the
``leader`` lease (one node at a time runs the store-wide background work), and reads the changes other nodes
made (``changes``: a new ready version, an alias moved, a key revoked, ...). Each change goes to the handlers
registered for its kind with ``on``; they re-read what the change names from the database, so a change read
twice is applied twice harmlessly. Polling, not PostgreSQL's LISTEN/NOTIFY: the same on SQLite and
PostgreSQL, nothing lost while a connection is down, and one cheap indexed query a second per node.

On PostgreSQL a transaction may take an id and commit after a later id: the reader reads again from the mark
it had ``window_s`` ago, and skips the ids it applied already. A database that does not answer stops neither
loop: the node keeps serving what it has loaded, warns once per outage and catches up when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.cluster.records import NodeRecord
from flashml.db import changes, leases, nodes
from flashml.db.outage import Outage
from flashml.settings import Settings

log = logging.getLogger("flashml.cluster")
Handler = Callable[[dict[str, Any]], Awaitable[object]]
LEADER = "leader"
KEEP_CHANGES_S = 3600.0  # how long the feed keeps a change: a node away longer reloads everything when it starts
PRUNE_EVERY_S = 60.0
MEANWHILE = "serving what is loaded, trying again every round"
RETRIES = 5  # rounds a change is tried again after its apply hit a database error, before the feed goes on


class ClusterNode:
    def __init__(self, engine: AsyncEngine, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.name = settings.node_name
        self.address = f"{settings.host}:{settings.port}"
        self.interval_s = settings.sync_interval_s
        self.window_s = max(5.0, 5 * self.interval_s)  # how far behind the reader reads again (PostgreSQL's order)
        self.lease_ttl_s = max(5 * self.interval_s, 2.0)
        self.clock = clock
        self.started_at = clock()
        self.leader = False  # holds the leader lease: runs the store-wide background work
        self.live_nodes = 1  # nodes seen in the last 3 intervals, this one included
        self.applied = 0  # changes applied since start (for tests and the log)
        self._handlers: dict[str, list[Handler]] = {}
        self._mark = 0  # the newest change id read
        self._floor = 0  # reads start after this id: the mark of window_s ago
        self._marks: deque[tuple[float, int]] = deque()
        self._seen: set[int] = set()  # ids above the floor already read
        self._tries: dict[int, int] = {}  # change id -> rounds its apply failed on a database error
        self._pruned_at = 0.0
        self._tasks: list[asyncio.Task] = []
        self._leader_work: list[tuple[Callable[[], Awaitable[object]], float, str]] = []
        self._leader_ran: dict[str, float] = {}
        self._leader_running: dict[str, asyncio.Task] = {}
        self._feed_outage = Outage("the change feed", MEANWHILE, log)
        self._beat_outage = Outage("the heartbeat", MEANWHILE, log)

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(change)`` for each change of ``kind`` another node makes (the row: model, number, name,
        key_id). It must be idempotent: it re-reads the thing from the database."""
        if kind not in changes.KINDS:
            raise ValueError(f"unknown change kind {kind!r}")
        self._handlers.setdefault(kind, []).append(handler)

    def when_leader(self, what: str, run: Callable[[], Awaitable[object]], every_s: float) -> None:
        """Run ``run`` every ``every_s`` seconds on the leader only, beside the loops (a round that fails is logged
        and tried again the next time)."""
        self._leader_work.append((run, every_s, what))

    async def begin(self) -> None:
        """Mark where this node starts reading: before it loads anything, so no change made while it loads is
        missed (one applied twice is harmless). What changed before is what it loads."""
        now = self.clock()
        self._floor, recent = await changes.recent(self.engine, now - self.window_s)
        self._seen = set(recent)
        self._mark = max([self._floor, *recent])
        self._marks.append((now, self._floor))

    async def start(self) -> None:
        """Beat once (so the node is listed at once) and run the two loops in the background."""
        await self._beat_round()
        self._tasks = [asyncio.create_task(self._loop(self._beat_round, self._beat_outage)),
                       asyncio.create_task(self._loop(self.sync, self._feed_outage))]

    async def stop(self) -> None:
        """Stop the loops, give the leader lease up and leave the nodes list (a clean stop)."""
        for task in [*self._tasks, *self._leader_running.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._leader_running.values(), return_exceptions=True)
        self._tasks = []
        try:
            if self.leader:
                await leases.release(self.engine, LEADER, self.name)
            await nodes.leave(self.engine, self.name)
        except Exception as exc:  # noqa: BLE001 - the lease expires and the heartbeat ages out anyway
            log.warning("leaving the nodes list failed (%s: %s)", type(exc).__name__, exc)
        self.leader = False

    async def _loop(self, run_round: Callable[[], Awaitable[object]], outage: Outage) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await run_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database that does not answer must not stop the node
                outage.failed(exc)
                if outage is self._beat_outage and self.leader and self.clock() - self._held_at > self.lease_ttl_s:
                    self.leader = False  # the lease ran out without a renewal: another node may hold it now
                continue
            outage.worked()

    _held_at = 0.0

    async def _beat_round(self) -> None:
        """Heartbeat, live nodes, the leader lease, and (leader) pruning the feed."""
        now = self.clock()
        await nodes.beat(self.engine, self.name, self.address, self.started_at, now)
        self.live_nodes = max(1, len(await nodes.live(self.engine, now, 3 * self.interval_s)))
        was = self.leader
        self.leader = await leases.hold(self.engine, LEADER, self.name, now, self.lease_ttl_s)
        if self.leader:
            self._held_at = now
        if self.leader != was:
            log.info("%s %s the leader", self.name, "is now" if self.leader else "is no longer")
        if self.leader and now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await changes.prune(self.engine, now - KEEP_CHANGES_S)
        if self.leader:
            self._start_leader_work(now)

    def _start_leader_work(self, now: float) -> None:
        for run, every_s, what in self._leader_work:
            running = self._leader_running.get(what)
            due = now - self._leader_ran.get(what, now - every_s) >= every_s
            if not due or (running is not None and not running.done()):
                continue
            self._leader_ran[what] = now
            self._leader_running[what] = asyncio.create_task(self._leader_round(run, what))

    @staticmethod
    async def _leader_round(run: Callable[[], Awaitable[object]], what: str) -> None:
        try:
            await run()
        except Exception:  # noqa: BLE001 - the next time tries again
            log.exception("%s failed", what)

    async def sync(self) -> int:
        """Read the changes made since the last round and apply other nodes' ones; how many were applied."""
        now = self.clock()
        applied = 0
        after = self._floor
        while True:
            rows = await changes.since(self.engine, after)
            for row in rows:
                after = row["id"]
                if row["id"] in self._seen:
                    continue
                if row["node"] != self.name:
                    await self._dispatch(row)  # a database error stops the round: this change comes again
                    applied += 1
                self._seen.add(row["id"])
                self._mark = max(self._mark, row["id"])
            if len(rows) < changes.PAGE:
                break
        self._marks.append((now, self._mark))
        while len(self._marks) > 1 and self._marks[1][0] <= now - self.window_s:
            self._marks.popleft()
        if self._marks[0][0] <= now - self.window_s:
            self._floor = self._marks[0][1]
            self._seen = {i for i in self._seen if i > self._floor}
            self._tries = {i: n for i, n in self._tries.items() if i > self._floor}
        self.applied += applied
        return applied

    async def _dispatch(self, change: dict[str, Any]) -> None:
        for handler in self._handlers.get(change["kind"], ()):
            try:
                await handler(change)
            except asyncio.CancelledError:
                raise
            except (DBAPIError, OSError):
                tries = self._tries[change["id"]] = self._tries.get(change["id"], 0) + 1
                if tries < RETRIES:
                    raise  # the database (or the store) did not answer: the next round applies it again
                log.exception("applying the change %s (%s) from %s failed %d times; going on without it",
                              change["id"], change["kind"], change["node"], tries)
            except Exception:  # noqa: BLE001 - one change that cannot be applied must not stop the feed
                log.exception("applying the change %s (%s %s %s) from %s failed", change["id"], change["kind"],
                              change.get("model") or change.get("key_id") or "", change.get("number") or
                              change.get("name") or "", change["node"])

    def live(self) -> Awaitable[list[dict[str, Any]]]:
        """The live nodes' rows (name, address, started and seen times), read now."""
        return nodes.live(self.engine, self.clock(), 3 * self.interval_s)

    async def listed(self) -> list[NodeRecord]:
        """The live nodes as GET /api/v1/nodes lists them, the leader lease's holder marked."""
        rows = await self.live()
        leader = await leases.holder(self.engine, LEADER, self.clock())
        return [NodeRecord(id=r["node_id"], address=r["address"], started_at=r["started_at"], seen_at=r["seen_at"],
                           leader=r["node_id"] == leader) for r in rows]
