"""Housekeeping tasks on the scheduler, each with its last run recorded in SQLite for the console and API.

- ``uploads``: expired, abandoned and failed direct uploads;
- ``job_outputs``: results and chunk files of jobs finished longer ago than ``job_retention_s``;
- ``model_cache``: versions waiting for the store to load, and versions in the node-local cache of a remote
  store that are deleted, archived or failed.

Several nodes sharing the database and store: the store-wide tasks (uploads, job outputs) run on the leader only
(``is_leader``), so two nodes never clean the same things at once; the node-local one on every node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import jobs as db
from flashml.jobs.records import HousekeepingRecord
from flashml.jobs.scheduler import Scheduler, make_trigger
from flashml.jobs.service import JobService
from flashml.registry.direct_uploads import DirectUploadService
from flashml.registry.service import RegistryService

log = logging.getLogger("flashml.housekeeping")
TASKS = ("uploads", "job_outputs", "model_cache")
STORE_WIDE = ("uploads", "job_outputs")  # the leader's; model_cache is each node's own


class Housekeeping:
    def __init__(self, engine: AsyncEngine, scheduler: Scheduler, registry: RegistryService,
                 uploads: DirectUploadService, jobs: JobService, *,
                 is_leader: Callable[[], bool] = lambda: True) -> None:
        self.engine = engine
        self.is_leader = is_leader
        self.scheduler = scheduler
        self.registry = registry
        self.uploads = uploads
        self._running = 0
        self.tasks: dict[str, Callable[[], Awaitable[int]]] = {
            "uploads": uploads.housekeeping, "job_outputs": jobs.expire_outputs, "model_cache": self._model_cache}

    async def wait_idle(self) -> None:
        """Let rounds that are running finish (before the database closes at shutdown)."""
        while self._running:
            await asyncio.sleep(0.01)

    def plan(self, interval_s: float) -> None:
        for name in self.tasks:
            self.scheduler.add(f"housekeeping-{name}", make_trigger(None, max(1.0, interval_s)), self.run, name,
                               now=True)

    async def run(self, name: str) -> None:
        """One run of one task; the outcome (or its error) is recorded, never raised: the scheduler goes on. A
        store-wide task is the leader's: another node skips it (and records nothing, the leader's run stands)."""
        if name in STORE_WIDE and not self.is_leader():
            return
        started = time.time()
        removed, error = 0, None
        self._running += 1
        try:
            try:
                removed = await self.tasks[name]()
            except Exception as exc:  # noqa: BLE001 - a failed round is recorded and tried again next time
                error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                log.warning("housekeeping %s failed: %s", name, error)
            await db.record_housekeeping(self.engine, name, time.time() - started, removed, error)
        finally:
            self._running -= 1

    async def status(self) -> list[HousekeepingRecord]:
        runs = {r["task"]: r for r in await db.housekeeping_runs_all(self.engine)}
        out = []
        for name in self.tasks:
            nxt = self.scheduler.next_run(f"housekeeping-{name}")
            out.append(HousekeepingRecord(task=name, **{k: (runs.get(name) or {}).get(k) for k in
                                                        ("last_run_at", "duration_s", "removed", "error")},
                                          next_run_at=nxt.timestamp() if nxt else None))
        return out

    async def _model_cache(self) -> int:
        await self.registry.load_waiting()
        return await self.registry.evict_unused_cache()
