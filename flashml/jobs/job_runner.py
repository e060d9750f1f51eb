"""Run batch jobs, one at a time, chunk by chunk, through the version's batcher at the batch priority.

Every finished chunk is written to the store as its own object, then checkpointed in SQLite; a job that a
restart (or ``kill -9``) interrupted resumes at its first chunk without a checkpoint, so the result has every
row exactly once. Between chunks the runner re-reads the job's state: pause and cancel take effect there.

A job that finds the store unreachable goes back to the queue and waits for it (probing with backoff), then
goes on from its last checkpoint; past ``job_storage_wait_s`` without the store it fails, saying so.

Several nodes sharing one database: a node claims a queued job with a compare-and-set (queued -> running, its
name in ``jobs.node``, a lease in ``jobs.lease_until``) and renews the lease while it works (flashml.jobs.job_watch);
a job whose node stops renewing it is requeued by another node and goes on from its last checkpoint there. Every
checkpoint is a compare-and-set on the node too, so a node that lost its job (paused past its lease, then woken)
writes nothing more of it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.principal import Principal
from flashml.db import jobs as db
from flashml.errors import FlashMLError
from flashml.inference.predict import PredictService
from flashml.inference.service import InferenceService
from flashml.jobs import image_rows, imagezip
from flashml.jobs.datasets import datasets_cache
from flashml.jobs.formats import Chunk, read_chunks
from flashml.jobs.imagezip import ZipLimits
from flashml.jobs.job_watch import JobWatch
from flashml.jobs.mapping import resolve_mapping, to_inputs
from flashml.jobs.results import ANSWER_COLUMN, ResultError, assemble, write_answers, write_chunk
from flashml.runtime.pool import LoadedModel
from flashml.runtime.runner import ModelRuntimeError
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore, StorageUnavailableError
from flashml.storage.scratch import remove_path
from flashml.storage.threads import in_store_thread

log = logging.getLogger("flashml.jobs")
PRIORITY_BATCH = 1  # behind every online request (PRIORITY_ONLINE = 0)
SUB_BATCH_ROWS = 256  # rows per request a job sends: small enough that an online request never waits long
STORE_PROBE_FIRST_S, STORE_PROBE_MAX_S = 1.0, 60.0  # waiting for the store: probes 1, 2, 4 ... 60 s apart
JOB_LEASE_SYNCS = 10  # a job's lease lasts this many sync_interval_s (10 s by default); renewed every third of it
SYSTEM = Principal(key_pk=0, key_id="batch-jobs", name="batch jobs", role="admin", models=None,
                   created_by="system")


class LostJob(Exception):
    """The job is no longer this run's to write: paused or cancelled meanwhile, or taken over by another node."""


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def chunk_key(job_id: int, chunk: int, fmt: str, run: str) -> str:
    """Each run writes its own objects: a node that lost the job never overwrites the chunk of the one that has it."""
    return f"jobs/{job_id}/chunks/{chunk:08d}-{run}.{fmt}"


class JobRunner:
    def __init__(self, engine: AsyncEngine, store: ArtifactStore, inference: InferenceService,
                 settings: Settings, predict: PredictService | None = None, *, lease_s: float | None = None) -> None:
        self.engine, self.store, self.inference, self.settings = engine, store, inference, settings
        self.node = settings.node_name
        self.lease_s = lease_s or JOB_LEASE_SYNCS * settings.sync_interval_s
        self.predict = predict  # image task processing, for zip-of-images datasets
        self.work = settings.data_dir / "tmp" / "jobs"
        self.datasets_cache = datasets_cache(settings)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.current: int | None = None
        self.claim: tuple[int, str] | None = None  # (job id, run) this node holds now
        self.lost = False  # the watch found the claim gone; the run stops at its next chunk
        self.renewed_at = 0.0  # when the claim's lease was last extended
        self.watch = JobWatch(self, settings.sync_interval_s)
        self._store_waits: dict[int, float] = {}  # job id -> when it first found the store unreachable
        self._waiters: set[asyncio.Task] = set()
        self.rows_scored: dict[tuple[str, int], int] = {}  # (model, version) -> rows scored since start (/metrics)

    async def start(self) -> None:
        """Queue every job a stop or a crash of this node left running, and the queued ones; they resume from
        their checkpoints. Jobs other nodes run are theirs: the watch requeues them only once their lease ran out."""
        self.work.mkdir(parents=True, exist_ok=True)
        for job in await db.running_on(self.engine, self.node):
            if await db.move_job(self.engine, job["id"], ("running",), "queued", node=None, lease_until=None):
                await db.log(self.engine, job["id"], "The server stopped during this job; it resumes from its last "
                             f"finished chunk ({job['rows_done']} rows done).", level="info")
        for job in await db.jobs_in_state(self.engine, "queued"):
            self.submit(job["id"])
        self._task = asyncio.create_task(self._loop())
        self.watch.start()

    def idle(self) -> bool:
        """Nothing running and nothing waiting in this node's queue."""
        return self.current is None and self._queue.empty()

    def waiting_for_store(self) -> set[int]:
        return set(self._store_waits)

    async def stop(self) -> None:
        await self.watch.stop()
        tasks = [t for t in (self._task, *self._waiters) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, job_id: int) -> None:
        self._queue.put_nowait(job_id)

    async def _loop(self) -> None:
        while True:
            job_id = await self._queue.get()
            self.current = job_id
            try:
                await self._run(job_id)
            except asyncio.CancelledError:  # shutting down: the next start (or another node) resumes it
                await db.move_job(self.engine, job_id, ("running",), "queued", holder=self.node, node=None,
                                  lease_until=None)
                raise
            except Exception:  # noqa: BLE001 - one broken job must not stop the others
                log.exception("job %s failed", job_id)
                await self._fail(job_id, "internal_error", "The job failed unexpectedly; see the server log.")
            finally:
                self.current, self.claim = None, None

    async def _fail(self, job_id: int, code: str, message: str) -> None:
        if await db.move_job(self.engine, job_id, ("running",), "failed", holder=self.node, lease_until=None,
                             error={"code": code, "error": message}, finished_at=time.time()):
            await db.log(self.engine, job_id, message)

    async def _claim(self, job_id: int) -> dict[str, Any] | None:
        """Take a queued job for this node (compare-and-set: of the nodes trying, one wins); the job as it was."""
        job = await db.get_job(self.engine, job_id)
        if job is None or job["state"] != "queued":
            return None  # paused, cancelled, or claimed by another node while it waited here
        now = time.time()
        if not await db.move_job(self.engine, job_id, ("queued",), "running", started_at=now,
                                 run_rows_base=job["rows_done"], error=None, finished_at=None, node=self.node,
                                 lease_until=now + self.lease_s):
            return None
        self.claim, self.lost, self.renewed_at = (job_id, secrets.token_hex(4)), False, now
        if job["node"] not in (None, self.node):  # requeued by the watch: its node stopped renewing the lease
            await db.log(self.engine, job_id, f"Node {job['node']} stopped answering; node {self.node} resumes the "
                         f"job from its last finished chunk ({job['rows_done']} rows done).", level="info")
        return job

    async def _run(self, job_id: int) -> None:
        job = await self._claim(job_id)
        if job is None:
            return
        try:
            await self._score(job)
        except LostJob:
            log.info("job %s: no longer this node's to run (paused, cancelled or taken over)", job_id)
        except StorageUnavailableError:
            await self._wait_for_store(job_id)
            return
        except JobFailed as exc:
            await self._fail(job_id, exc.code, exc.message)
        except FlashMLError as exc:
            await self._fail(job_id, exc.code, exc.message)
        self._store_waits.pop(job_id, None)

    async def _wait_for_store(self, job_id: int) -> None:
        """Queue the job again and resubmit it once the store answers; fail it past ``job_storage_wait_s``."""
        first = self._store_waits.setdefault(job_id, time.monotonic())
        waited, limit = time.monotonic() - first, self.settings.job_storage_wait_s
        if waited >= limit:
            self._store_waits.pop(job_id, None)
            await self._fail(job_id, "storage_unavailable", f"The artifact storage could not be reached for "
                             f"{waited:.0f} s (setting job_storage_wait_s), so the job stopped at its last finished "
                             "chunk. Retry it when the storage is back: it goes on from there.")
            return
        if not await db.move_job(self.engine, job_id, ("running",), "queued", holder=self.node, node=None,
                                 lease_until=None):
            return  # paused, cancelled or taken over meanwhile
        await db.log(self.engine, job_id, "The artifact storage cannot be reached; the job waits for it (up to "
                     f"{limit - waited:.0f} s more) and goes on from its last finished chunk.", level="info")
        task = asyncio.create_task(self._resubmit_when_store_answers(job_id, first + limit))
        self._waiters.add(task)
        task.add_done_callback(self._waiters.discard)

    async def _resubmit_when_store_answers(self, job_id: int, give_up_at: float) -> None:
        delay = STORE_PROBE_FIRST_S
        while True:
            await asyncio.sleep(min(delay, max(0.0, give_up_at - time.monotonic())))
            try:
                await in_store_thread(self.store.check)
                break
            except StorageUnavailableError:
                if time.monotonic() >= give_up_at:
                    break  # the run fails it, saying how long the store was away
            delay = min(delay * 2, STORE_PROBE_MAX_S)
        self.submit(job_id)

    async def _score(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        dataset = await db.get_dataset(self.engine, job["dataset_id"])
        if dataset is None:
            raise JobFailed("dataset_not_found", f"Dataset {job['dataset_id']} no longer exists.")
        loaded = await self.inference.resolve(SYSTEM, job["model"], job["version"], routing_key=f"job:{job_id}")
        if dataset["format"] == "images":
            await self._score_images(job, dataset, loaded)
            return
        mapping = resolve_mapping(loaded.signature, dataset["columns"], job["mapping"])
        await db.set_job(self.engine, job_id, resolved_version=loaded.version)
        path = await in_store_thread(self._dataset_file, dataset)
        chunks = read_chunks(path, dataset["format"], dataset["name"], job["chunk_rows"], await self._first(job_id))
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            if not await self._still_ours(job_id):
                return  # paused, cancelled or taken over: what is checkpointed stays
            await self._chunk(job, loaded, mapping, chunk)
        await self._finish(job)

    async def _first(self, job_id: int) -> int:
        """The first chunk without a checkpoint (chunks finish in order)."""
        done = await db.chunks(self.engine, job_id)
        return done[-1]["chunk"] + 1 if done else 0

    async def _still_ours(self, job_id: int) -> bool:
        """Still running, on this node, and the watch has not found the claim gone."""
        now = await db.get_job(self.engine, job_id)
        return not self.lost and now is not None and now["state"] == "running" and now["node"] == self.node

    async def _score_images(self, job: dict[str, Any], dataset: dict[str, Any], loaded: LoadedModel) -> None:
        """A zip of images through an image task model: answers per image, keyed by its name in the zip."""
        job_id, fmt, size = job["id"], job["output_format"], job["chunk_rows"]
        if self.predict is None:
            raise JobFailed("unsupported_format", "This server cannot score zips of images (no image task models).")
        runtime = await self.predict.runtime(loaded)
        await db.set_job(self.engine, job_id, resolved_version=loaded.version)
        path = await in_store_thread(self._dataset_file, dataset)
        limits = ZipLimits(self.settings.dataset_zip_max_files, self.settings.dataset_zip_max_bytes)
        chunks = imagezip.read(path, size, await self._first(job_id) * size, limits)
        fixed = any(s.shape and s.shape[0] != -1 for s in loaded.signature.inputs)  # a model of batch 1
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            if not await self._still_ours(job_id):
                return
            start, names, data = chunk
            rows, prepared, bad = await asyncio.to_thread(image_rows.prepare, runtime, names, data, start,
                                                          self.settings.predict_max_image_pixels)
            await self._check_bad(job, bad)
            answers: list[Any] = []
            if prepared:
                outputs = await self._infer(loaded, image_rows.stack(prepared), len(prepared), 1 if fixed else None)
                answers = await asyncio.to_thread(image_rows.answers, runtime, outputs, prepared)
            ids = [names[r - start] for r in rows]
            await self._save(job, start, len(names), bad,
                             partial(write_answers, fmt, row_ids=ids, answers=answers, column=ANSWER_COLUMN))
            self._scored(loaded, len(prepared))
        await self._finish(job)

    async def _check_bad(self, job: dict[str, Any], bad: list[tuple[int, str]]) -> None:
        if bad and job["on_bad_row"] == "fail":
            await db.log_many(self.engine, job["id"], [(row, msg) for row, msg in bad[:100]])
            raise JobFailed("bad_row", f"Row {bad[0][0]} cannot be scored ({bad[0][1]}); the job fails on bad rows "
                                       "(on_bad_row = fail).")

    async def _chunk(self, job: dict[str, Any], loaded: LoadedModel, mapping: dict[str, str], chunk: Chunk) -> None:
        fmt = job["output_format"]
        inputs, row_ids, bad = await asyncio.to_thread(to_inputs, chunk, loaded.signature, mapping)
        await self._check_bad(job, bad)
        outputs = await self._infer(loaded, inputs, len(row_ids))
        await self._save(job, chunk.start, chunk.rows, bad,
                         lambda tmp: write_chunk(fmt, tmp, row_ids, outputs))
        self._scored(loaded, len(row_ids))

    def _scored(self, loaded: LoadedModel, rows: int) -> None:
        """Count a saved chunk's scored rows (not its skipped bad ones)."""
        key = (loaded.model, loaded.version)
        self.rows_scored[key] = self.rows_scored.get(key, 0) + rows

    async def _save(self, job: dict[str, Any], start: int, rows: int, bad: list[tuple[int, str]],
                    write: Callable[[Path], None]) -> None:
        """Write a chunk's results with ``write``, store them, then checkpoint the chunk and log its bad rows.
        The checkpoint holds only while this node has the job; otherwise the object goes and the run stops."""
        job_id, fmt = job["id"], job["output_format"]
        if self.lost or self.claim is None:
            raise LostJob
        number = start // job["chunk_rows"]
        key = chunk_key(job_id, number, fmt, self.claim[1])
        tmp = self.work / f"{job_id}-{number}.{fmt}"
        try:
            await asyncio.to_thread(write, tmp)
            await in_store_thread(self.store.put_file, key, tmp, move=True)
        finally:
            tmp.unlink(missing_ok=True)
        now = time.time()
        if not await db.checkpoint(self.engine, job_id, number, rows, len(bad), key, node=self.node,
                                   until=now + self.lease_s):
            await in_store_thread(self.store.delete, key)
            raise LostJob
        self.renewed_at = now
        await db.log_many(self.engine, job_id, [(row, f"skipped: {msg}") for row, msg in bad])

    async def _infer(self, loaded: LoadedModel, inputs: dict[str, np.ndarray], rows: int,
                     step: int | None = None) -> dict[str, np.ndarray]:
        """Score the rows in sub-batches at the batch priority, yielding to online traffic.

        The batcher already serves online requests first, but on a small machine the job's batches still take
        cores and the event loop from them. So while online requests arrive for this version, the job keeps one
        sub-batch in flight and rests between them, so that it is busy at most ``job_online_share`` of the time.
        """
        names = [o.name for o in loaded.signature.outputs]
        if rows == 0:
            return {n: np.empty((0,), np.float32) for n in names}
        step = step or min(loaded.config.max_batch_size or rows, SUB_BATCH_ROWS)
        share = self.settings.job_online_share
        pieces = []
        for s in range(0, rows, step):
            seen = loaded.requests
            started = time.perf_counter()
            try:
                pieces.append(await loaded.run({k: v[s:s + step] for k, v in inputs.items()}, names,
                                               key="batch-jobs", weight=1, priority=PRIORITY_BATCH, timeout_us=0))
            except ModelRuntimeError as exc:
                raise JobFailed("inference_failed", f"The model failed on rows {s} to {s + step - 1} of this "
                                                    f"chunk: {exc}") from exc
            online = loaded.requests - seen - 1  # requests for this version while ours ran, not ours
            if online > 0 and share < 1:
                await asyncio.sleep((time.perf_counter() - started) * (1 / max(share, 0.01) - 1))
        return {n: np.concatenate([p[n] for p in pieces]) for n in names}

    async def _finish(self, job: dict[str, Any]) -> None:
        job_id, fmt = job["id"], job["output_format"]
        if not await self._still_ours(job_id):
            return  # paused, cancelled or taken over after its last chunk
        parts = await db.chunks(self.engine, job_id)
        folder = self.work / f"{job_id}-assemble"
        folder.mkdir(parents=True, exist_ok=True)
        dest = self.work / f"{job_id}-result.{fmt}"
        key = f"jobs/{job_id}/result.{fmt}"
        try:
            files = []
            for part in parts:
                local = self.store.local_path(part["object_key"])
                if local is None:
                    local = folder / Path(part["object_key"]).name
                    await in_store_thread(self.store.get_file, part["object_key"], local)
                files.append(local)
            try:
                await asyncio.to_thread(assemble, fmt, files, dest)
            except ResultError as exc:
                raise JobFailed("result_shape_varies", str(exc)) from None
            size = dest.stat().st_size
            await in_store_thread(self.store.put_file, key, dest, move=True)
        finally:
            remove_path(folder)
            dest.unlink(missing_ok=True)
        if await db.move_job(self.engine, job_id, ("running",), "succeeded", holder=self.node, lease_until=None,
                             result_key=key, result_bytes=size, finished_at=time.time()):
            await in_store_thread(self.store.delete_prefix, f"jobs/{job_id}/chunks/")

    def _dataset_file(self, dataset: dict[str, Any]) -> Path:
        local = self.store.local_path(dataset["object_key"])
        if local is not None:
            return local
        dest = self.datasets_cache / dataset["id"] / Path(dataset["object_key"]).name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.store.get_file(dataset["object_key"], dest)
        return dest
