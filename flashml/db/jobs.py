"""Queries for datasets, jobs, their checkpoints and logs, schedules and housekeeping runs."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.engine import inserted_id
from flashml.db.fit import fit
from flashml.db.schema import datasets, housekeeping_runs, job_chunks, job_log, job_schedules, jobs
from flashml.db.upsert import upsert


async def _one(engine: AsyncEngine, stmt) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def _all(engine: AsyncEngine, stmt) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


# ---- datasets ----

async def add_dataset(engine: AsyncEngine, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(datasets).values(created_at=time.time(), **fit(datasets, values)))


async def get_dataset(engine: AsyncEngine, dataset_id: str) -> dict[str, Any] | None:
    return await _one(engine, select(datasets).where(datasets.c.id == dataset_id))


async def list_datasets(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await _all(engine, select(datasets).order_by(datasets.c.created_at.desc()))


async def dataset_users(engine: AsyncEngine, dataset_id: str, states: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """The ids of the jobs in one of ``states`` and of the schedules that score ``dataset_id``."""
    async with engine.connect() as conn:
        job_ids = (await conn.execute(select(jobs.c.id).where(jobs.c.dataset_id == dataset_id,
                                                              jobs.c.state.in_(states)).order_by(jobs.c.id))).scalars()
        schedule_ids = (await conn.execute(select(job_schedules.c.id).where(
            job_schedules.c.spec["dataset"].as_string() == dataset_id).order_by(job_schedules.c.id))).scalars()
        return list(job_ids), list(schedule_ids)


async def delete_dataset(engine: AsyncEngine, dataset_id: str) -> bool:
    async with engine.begin() as conn:
        res = await conn.execute(delete(datasets).where(datasets.c.id == dataset_id))
    return res.rowcount == 1


# ---- jobs ----

async def add_job(engine: AsyncEngine, **values: Any) -> int:
    now = time.time()
    async with engine.begin() as conn:
        res = await conn.execute(insert(jobs).values(created_at=now, updated_at=now, state="queued", rows_done=0,
                                                     rows_bad=0, run_rows_base=0, **fit(jobs, values)))
    return inserted_id(res)


async def get_job(engine: AsyncEngine, job_id: int) -> dict[str, Any] | None:
    return await _one(engine, select(jobs).where(jobs.c.id == job_id))


async def list_jobs(engine: AsyncEngine, limit: int = 200) -> list[dict[str, Any]]:
    return await _all(engine, select(jobs).order_by(jobs.c.id.desc()).limit(limit))


async def jobs_in_state(engine: AsyncEngine, *states: str) -> list[dict[str, Any]]:
    return await _all(engine, select(jobs).where(jobs.c.state.in_(states)).order_by(jobs.c.id))


async def move_job(engine: AsyncEngine, job_id: int, from_states: tuple[str, ...], to_state: str, *,
                   holder: str | None = None, **values: Any) -> bool:
    """Change the state only from one of ``from_states`` (and, given ``holder``, only while that node holds the
    job); False when the job was elsewhere. A compare-and-set: of two nodes trying, one wins."""
    where = [jobs.c.id == job_id, jobs.c.state.in_(from_states)]
    if holder is not None:
        where.append(jobs.c.node == holder)
    async with engine.begin() as conn:
        res = await conn.execute(update(jobs).where(*where).values(state=to_state, updated_at=time.time(), **values))
    return res.rowcount == 1


# ---- leases: which node runs a job, and until when its claim holds ----

async def renew_lease(engine: AsyncEngine, job_id: int, node: str, until: float) -> bool:
    """Extend ``node``'s lease on a running job; False when the job is no longer running on it."""
    async with engine.begin() as conn:
        res = await conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.node == node,
                                                    jobs.c.state == "running").values(lease_until=until))
    return res.rowcount == 1


async def running_on(engine: AsyncEngine, node: str) -> list[dict[str, Any]]:
    """The jobs in state running that ``node`` (or a FlashML without leases: no node) claimed."""
    return await _all(engine, select(jobs).where(jobs.c.state == "running",
                                                 (jobs.c.node == node) | jobs.c.node.is_(None)).order_by(jobs.c.id))


async def expired_leases(engine: AsyncEngine, now: float) -> list[dict[str, Any]]:
    """Running jobs whose node stopped renewing its lease before ``now``."""
    return await _all(engine, select(jobs).where(jobs.c.state == "running", jobs.c.lease_until < now)
                      .order_by(jobs.c.id))


async def requeue_expired(engine: AsyncEngine, job_id: int, node: str, now: float) -> bool:
    """Put a job whose lease ran out back in the queue, once: only if ``node`` still has it and has not renewed.
    ``node`` stays on the queued job, so the node that claims it next can say whose work it goes on with."""
    async with engine.begin() as conn:
        res = await conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running",
                                                    jobs.c.node == node, jobs.c.lease_until < now)
                                 .values(state="queued", lease_until=None, updated_at=time.time()))
    return res.rowcount == 1


async def oldest_queued(engine: AsyncEngine, skip: set[int]) -> int | None:
    """The oldest queued job's id, leaving out ``skip``."""
    stmt = select(jobs.c.id).where(jobs.c.state == "queued").order_by(jobs.c.id)
    if skip:
        stmt = stmt.where(jobs.c.id.not_in(skip))
    async with engine.connect() as conn:
        return (await conn.execute(stmt.limit(1))).scalar()


async def set_job(engine: AsyncEngine, job_id: int, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job_id).values(updated_at=time.time(), **values))


async def finished_before(engine: AsyncEngine, before: float) -> list[dict[str, Any]]:
    """Finished jobs that still have files in the store (a result or checkpointed chunks)."""
    has_chunks = jobs.c.id.in_(select(job_chunks.c.job_id))
    return await _all(engine, select(jobs).where(jobs.c.state.in_(("succeeded", "failed", "cancelled")),
                                                 jobs.c.finished_at < before,
                                                 jobs.c.result_key.is_not(None) | has_chunks))


async def drop_chunks(engine: AsyncEngine, job_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(job_chunks).where(job_chunks.c.job_id == job_id))


# ---- checkpoints ----

async def checkpoint(engine: AsyncEngine, job_id: int, chunk: int, rows: int, rows_bad: int, key: str, *,
                     node: str, until: float) -> bool:
    """Record a finished chunk and add its rows to the job's counts, in one transaction, and renew the lease;
    only while ``node`` holds the job (running, or paused meanwhile). False, recording nothing, when another
    node took it over: a chunk is never counted twice."""
    async with engine.begin() as conn:
        res = await conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.node == node,
                                                    jobs.c.state.in_(("running", "paused"))).values(
            rows_done=jobs.c.rows_done + rows, rows_bad=jobs.c.rows_bad + rows_bad, updated_at=time.time(),
            lease_until=until))
        if res.rowcount != 1:
            return False
        await conn.execute(insert(job_chunks).values(job_id=job_id, chunk=chunk, rows=rows, rows_bad=rows_bad,
                                                     object_key=key, done_at=time.time()))
    return True


async def chunks(engine: AsyncEngine, job_id: int) -> list[dict[str, Any]]:
    return await _all(engine, select(job_chunks).where(job_chunks.c.job_id == job_id).order_by(job_chunks.c.chunk))


# ---- log ----

async def log(engine: AsyncEngine, job_id: int, message: str, *, row: int | None = None, level: str = "error") -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(job_log).values(job_id=job_id, at=time.time(), level=level, row=row,
                                                  message=message[:2000]))


async def log_many(engine: AsyncEngine, job_id: int, entries: list[tuple[int | None, str]]) -> None:
    if entries:
        now = time.time()
        async with engine.begin() as conn:
            await conn.execute(insert(job_log), [{"job_id": job_id, "at": now, "level": "error", "row": row,
                                                  "message": msg[:2000]} for row, msg in entries])


async def job_log_entries(engine: AsyncEngine, job_id: int, limit: int = 500) -> list[dict[str, Any]]:
    return await _all(engine, select(job_log).where(job_log.c.job_id == job_id).order_by(job_log.c.id).limit(limit))


async def count_log(engine: AsyncEngine, job_id: int) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).where(job_log.c.job_id == job_id))).scalar_one()


# ---- schedules ----

async def add_schedule(engine: AsyncEngine, *, announce: Change | None = None, **values: Any) -> int:
    """Add a schedule; its id. ``announce`` (the change feed's row, its number set to the new id) commits with it."""
    async with engine.begin() as conn:
        res = await conn.execute(insert(job_schedules).values(created_at=time.time(), **fit(job_schedules, values)))
        schedule_id = inserted_id(res)
        await write(conn, announce and replace(announce, number=schedule_id))
    return schedule_id


async def list_schedules(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await _all(engine, select(job_schedules).order_by(job_schedules.c.id))


async def get_schedule(engine: AsyncEngine, schedule_id: int) -> dict[str, Any] | None:
    return await _one(engine, select(job_schedules).where(job_schedules.c.id == schedule_id))


async def claim_firing(engine: AsyncEngine, schedule_id: int, now: float, window_s: float) -> bool:
    """Take one firing of a schedule: of the nodes whose scheduler fires it at the same moment, the first one
    stamps last_run_at and wins; the others find a run stamped less than ``window_s`` ago and stand back."""
    async with engine.begin() as conn:
        res = await conn.execute(update(job_schedules).where(
            job_schedules.c.id == schedule_id,
            job_schedules.c.last_run_at.is_(None) | (job_schedules.c.last_run_at < now - window_s))
            .values(last_run_at=now))
    return res.rowcount == 1


async def set_schedule(engine: AsyncEngine, schedule_id: int, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(job_schedules).where(job_schedules.c.id == schedule_id).values(**values))


async def delete_schedule(engine: AsyncEngine, schedule_id: int, *, announce: Change | None = None) -> bool:
    async with engine.begin() as conn:
        res = await conn.execute(delete(job_schedules).where(job_schedules.c.id == schedule_id))
        if res.rowcount == 1:
            await write(conn, announce)
    return res.rowcount == 1


# ---- housekeeping ----

async def record_housekeeping(engine: AsyncEngine, task: str, duration_s: float, removed: int,
                              error: str | None) -> None:
    values = {"last_run_at": time.time(), "duration_s": duration_s, "removed": removed, "error": error}
    stmt = upsert(engine, housekeeping_runs).values(task=task, **values)
    async with engine.begin() as conn:
        await conn.execute(stmt.on_conflict_do_update(index_elements=["task"], set_=values))


async def housekeeping_runs_all(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await _all(engine, select(housekeeping_runs).order_by(housekeeping_runs.c.task))
