"""The job runner's watch over the jobs of every node sharing the database, every ``sync_interval_s``:

- renews this node's lease on the job it runs (every third of the lease; a chunk may take longer than that, so
  this is a task of its own, not a step between chunks), and tells the runner when the job is no longer its own;
- requeues a running job whose lease ran out (its node was killed, lost the database, or was paused past it): a
  compare-and-set on the lease, so of two nodes seeing it only one requeues it; it goes on from its last
  checkpoint on whichever node claims it;
- offers the oldest queued job to an idle runner: a job accepted by a node that died before running it, or
  requeued above, is run by another node (the claim itself is the runner's compare-and-set).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from flashml.db import jobs as db
from flashml.db.outage import Outage

if TYPE_CHECKING:
    from flashml.jobs.job_runner import JobRunner

log = logging.getLogger("flashml.jobs")


class JobWatch:
    def __init__(self, runner: JobRunner, interval_s: float) -> None:
        self.runner = runner
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None
        self._outage = Outage("job watch", "trying again every round", log)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.round()
                self._outage.worked()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database hiccup: try again next round
                self._outage.failed(exc)

    async def round(self) -> None:
        await self.renew()
        await self.requeue_expired()
        await self.offer()

    async def renew(self) -> None:
        runner = self.runner
        claim, now = runner.claim, time.time()
        if claim is None or now - runner.renewed_at < runner.lease_s / 3:
            return
        if await db.renew_lease(runner.engine, claim[0], runner.node, now + runner.lease_s):
            if runner.claim == claim:
                runner.renewed_at = now
        elif runner.claim == claim:  # paused, cancelled, or requeued by another node while this one was away
            runner.lost = True

    async def requeue_expired(self) -> None:
        runner, now = self.runner, time.time()
        for job in await db.expired_leases(runner.engine, now):
            if runner.claim is not None and runner.claim[0] == job["id"] and job["node"] == runner.node:
                continue  # this node's own job, late in renewing (renew() extends it)
            if await db.requeue_expired(runner.engine, job["id"], job["node"], now):
                log.warning("job %s: node %s stopped renewing its lease (%.1f s ago); back in the queue, it resumes "
                            "from its last finished chunk (%d rows done)", job["id"], job["node"],
                            now - job["lease_until"], job["rows_done"])
                if runner.idle():
                    runner.submit(job["id"])

    async def offer(self) -> None:
        runner = self.runner
        if runner.idle():
            job_id = await db.oldest_queued(runner.engine, runner.waiting_for_store())
            if job_id is not None and runner.idle():
                runner.submit(job_id)
