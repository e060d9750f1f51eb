"""Batch jobs for the JSON API, the console and the CLI: create, read, control, schedule, download."""

from __future__ import annotations

import builtins
import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import changes
from flashml.db import jobs as db
from flashml.errors import (
    BadRequestError,
    ConflictError,
    DatasetNotFoundError,
    FlashMLError,
    JobNotFoundError,
    NotFoundError,
    ScheduleNotFoundError,
)
from flashml.inference.service import InferenceService
from flashml.jobs.job_runner import SYSTEM, JobRunner
from flashml.jobs.mapping import resolve_mapping
from flashml.jobs.records import JobRecord, LogEntry, ScheduleRecord
from flashml.jobs.requests import JobRequest, ScheduleBody
from flashml.jobs.results import ANSWER_FORMATS, BINARY_OUTPUTS
from flashml.jobs.scheduler import Scheduler, make_trigger
from flashml.runtime.pool import LoadedModel
from flashml.settings import Settings
from flashml.storage.threads import in_store_thread
from flashml.tasks.config import IMAGE_TASKS

log = logging.getLogger("flashml.jobs")
# Cron fires at most once a minute, at the same moments on every node: a run stamped less than this ago is this one.
CRON_CLAIM_WINDOW_S = 30.0
FINISHED = ("succeeded", "failed", "cancelled")
# Which states each control may move a job from.
CONTROLS = {"cancel": (("queued", "running", "paused"), "cancelled"), "pause": (("queued", "running"), "paused"),
            "resume": (("paused",), "queued"), "retry": (("failed", "cancelled"), "queued")}


def job_record(row: dict[str, Any], now: float | None = None) -> JobRecord:
    """A job with its progress: rows done, rows per second and ETA of the current run."""
    now = now or time.time()
    total, done = row["rows_total"], row["rows_done"]
    rate = None
    if row["started_at"] and row["state"] == "running":
        elapsed = now - row["started_at"]
        ran = done - row["run_rows_base"]
        rate = ran / elapsed if elapsed > 0 and ran > 0 else None
    eta = (total - done) / rate if rate else None
    return JobRecord(
        **{k: row[k] for k in ("id", "model", "version", "resolved_version", "dataset_id", "output_format",
                               "chunk_rows", "on_bad_row", "mapping", "schedule_id", "state", "rows_total",
                               "rows_done", "rows_bad", "error", "result_bytes", "created_by", "created_at",
                               "started_at", "finished_at")},
        node=row["node"], progress=round(done / total, 4) if total else (1.0 if row["state"] == "succeeded" else 0.0),
        rows_per_s=round(rate, 1) if rate else None, eta_s=round(eta, 1) if eta is not None else None,
        result_url=f"/api/v1/jobs/{row['id']}/result" if row["result_key"] else None)


class JobService:
    def __init__(self, engine: AsyncEngine, inference: InferenceService, runner: JobRunner, scheduler: Scheduler,
                 settings: Settings) -> None:
        self.engine, self.inference, self.runner, self.scheduler = engine, inference, runner, scheduler
        self.settings = settings

    # ---- create ----

    async def check_spec(self, request: JobRequest) -> dict[str, Any]:
        """The job spec, defaults filled in and checked against the dataset and the model's signature."""
        model, dataset_id, fmt, on_bad = request.model, request.dataset, request.output_format, request.on_bad_row
        chunk = self.settings.job_chunk_rows if request.chunk_rows is None else request.chunk_rows
        mapping = request.mapping
        dataset = await db.get_dataset(self.engine, dataset_id)
        if dataset is None:
            raise DatasetNotFoundError(dataset_id)
        version = None if request.version in (None, "") else str(request.version)
        loaded = await self.inference.resolve(SYSTEM, model, version)
        if dataset["format"] == "images":
            return await self._check_images(loaded, {"model": model, "version": version, "dataset": dataset_id,
                                                     "output_format": fmt, "chunk_rows": chunk,
                                                     "on_bad_row": on_bad, "mapping": mapping})
        mapping = resolve_mapping(loaded.signature, dataset["columns"], mapping)
        strings = [o.name for o in loaded.signature.outputs if o.datatype == "BYTES"]
        if fmt in BINARY_OUTPUTS and strings:
            raise BadRequestError(f"Output(s) {', '.join(map(repr, strings))} hold strings, which an .{fmt} result "
                                  "cannot hold: choose csv, jsonl or parquet.", code="bad_output_format")
        return {"model": model, "version": version, "dataset": dataset_id, "output_format": fmt, "chunk_rows": chunk,
                "on_bad_row": on_bad, "mapping": mapping}

    async def _check_images(self, loaded: LoadedModel, spec: dict[str, Any]) -> dict[str, Any]:
        """A zip of images is scored by an image task model, into a file that holds a JSON answer per image."""
        config = await self.runner.predict.task_config(loaded.model, loaded.version) if self.runner.predict else None
        if config is None or config.task not in IMAGE_TASKS:
            task = config.task if config else "raw"
            raise BadRequestError(f"A zip of images is scored by an image task model (image-classification or "
                                  f"object-detection in its flashml.toml); {loaded.model} v{loaded.version} is "
                                  f"{task}.", code="not_an_image_model", details={"task": task})
        if spec["output_format"] not in ANSWER_FORMATS:
            raise BadRequestError(f"The answers for a zip of images are written as {' or '.join(ANSWER_FORMATS)} "
                                  "(a JSON value per image).", code="bad_output_format")
        if spec["mapping"]:
            raise BadRequestError("A zip of images feeds the model's image input; it takes no mapping.",
                                  code="bad_mapping")
        return spec

    async def create(self, request: JobRequest, *, actor: str) -> tuple[str, JobRecord | ScheduleRecord]:
        """("job", the job queued now) or ("schedule", the schedule) when the request has a schedule."""
        spec = await self.check_spec(request)
        if request.schedule is not None:
            return "schedule", await self._add_schedule(spec, request.schedule, actor)
        return "job", await self.start(spec, actor=actor)

    async def start(self, spec: dict[str, Any], *, actor: str, schedule_id: int | None = None) -> JobRecord:
        dataset = await db.get_dataset(self.engine, spec["dataset"])
        if dataset is None:
            raise DatasetNotFoundError(spec['dataset'])
        job_id = await db.add_job(self.engine, model=spec["model"], version=spec["version"], dataset_id=dataset["id"],
                                  output_format=spec["output_format"], chunk_rows=spec["chunk_rows"],
                                  on_bad_row=spec["on_bad_row"], mapping=spec["mapping"], schedule_id=schedule_id,
                                  rows_total=dataset["rows"], created_by=actor)
        self.runner.submit(job_id)
        return await self.get(job_id)

    # ---- read ----

    async def _row(self, job_id: int) -> dict[str, Any]:
        row = await db.get_job(self.engine, job_id)
        if row is None:
            raise JobNotFoundError(job_id)
        return row

    async def get(self, job_id: int) -> JobRecord:
        return job_record(await self._row(job_id))

    async def list(self) -> list[JobRecord]:
        now = time.time()
        return [job_record(r, now) for r in await db.list_jobs(self.engine)]

    async def log(self, job_id: int) -> builtins.list[LogEntry]:  # in this class `list` is the method above
        await self._row(job_id)
        return [LogEntry(**{k: e[k] for k in ("at", "level", "row", "message")})
                for e in await db.job_log_entries(self.engine, job_id)]

    async def result(self, job_id: int) -> tuple[dict[str, Any], str]:
        """The job row and its result's store key, or 404/409."""
        row = await self._row(job_id)
        if row["state"] != "succeeded":
            raise ConflictError(f"Job {job_id} is {row['state']}; its result is there once it has succeeded.",
                                code="job_not_finished")
        if not row["result_key"]:
            raise NotFoundError(f"The result of job {job_id} was removed (setting job_retention_s).",
                                code="result_expired")
        return row, row["result_key"]

    # ---- control ----

    async def control(self, job_id: int, action: str, *, actor: str) -> JobRecord:
        if action not in CONTROLS:
            raise NotFoundError(f"There is no job action {action!r}.", code="not_found")
        row = await self._row(job_id)
        allowed, target = CONTROLS[action]
        extra: dict[str, Any] = {"finished_at": time.time()} if target == "cancelled" else {}
        extra["lease_until"] = None  # the node running it stops at its next chunk, its lease no longer renewed
        if target == "queued":
            extra["node"] = None  # any node may claim it
        if not await db.move_job(self.engine, job_id, allowed, target, **extra):
            raise ConflictError(f"Job {job_id} is {row['state']}; {action} works on a job that is "
                                f"{' or '.join(allowed)}.", code="bad_job_state", details={"state": row["state"]})
        await db.log(self.engine, job_id, f"{action} by {actor}", level="info")
        if target == "queued":
            self.runner.submit(job_id)
        return await self.get(job_id)

    # ---- schedules ----

    async def _add_schedule(self, spec: dict[str, Any], schedule: ScheduleBody, actor: str) -> ScheduleRecord:
        cron, interval, tz = schedule.cron, schedule.interval_s, schedule.timezone or "UTC"
        make_trigger(cron, interval, tz)
        schedule_id = await db.add_schedule(self.engine, spec=spec, cron=cron, interval_s=interval, timezone=tz,
                                            created_by=actor,
                                            announce=changes.Change(changes.SCHEDULE, self.settings.node_name))
        row = await db.get_schedule(self.engine, schedule_id)
        if row is None:  # added just above; only its owner's delete removes it
            raise RuntimeError(f"schedule {schedule_id} vanished right after it was added")
        self._plan(row)
        return self._public_schedule(row)

    def _plan(self, row: dict[str, Any]) -> None:
        # An interval counts from the schedule's creation, so every node's scheduler fires it at the same moments.
        trigger = make_trigger(row["cron"], row["interval_s"], row["timezone"], start=row["created_at"])
        self.scheduler.add(f"schedule-{row['id']}", trigger, self.fire, row["id"])

    async def load_schedules(self) -> None:
        for row in await db.list_schedules(self.engine):
            self._plan(row)

    async def reload_schedules(self, change: object = None) -> None:
        """Plan the schedules another node added and drop those it deleted (a SCHEDULE change). Idempotent: it
        reads the table again, and leaves a schedule already planned as it is (its next run stays)."""
        rows = {row["id"]: row for row in await db.list_schedules(self.engine)}
        planned = {int(name.removeprefix("schedule-")) for name in self.scheduler.ids("schedule-")}
        for schedule_id in planned - rows.keys():
            self.scheduler.remove(f"schedule-{schedule_id}")
        for schedule_id in rows.keys() - planned:
            self._plan(rows[schedule_id])

    async def fire(self, schedule_id: int) -> None:
        """One run of a schedule: a new job with its spec (a run still going is left alone, not doubled). Every
        node's scheduler fires it; the one that stamps the run first starts the job, the others stand back."""
        row = await db.get_schedule(self.engine, schedule_id)
        if row is None:
            return
        window = row["interval_s"] / 2 if row["interval_s"] else CRON_CLAIM_WINDOW_S
        if not await db.claim_firing(self.engine, schedule_id, time.time(), window):
            return  # another node started this run
        if row["last_job_id"]:
            last = await db.get_job(self.engine, row["last_job_id"])
            if last is not None and last["state"] in ("queued", "running"):
                await db.log(self.engine, last["id"], "A scheduled run was skipped: this run is still going.",
                             level="info")
                return
        try:
            job = await self.start(row["spec"], actor=f"schedule:{schedule_id}", schedule_id=schedule_id)
        except FlashMLError as exc:  # its dataset is gone: say so in the log, try again next time
            log.warning("schedule %s could not start a job: %s", schedule_id, exc.message)
            return
        await db.set_schedule(self.engine, schedule_id, last_job_id=job.id)

    def _public_schedule(self, row: dict[str, Any]) -> ScheduleRecord:
        nxt: datetime | None = self.scheduler.next_run(f"schedule-{row['id']}")
        return ScheduleRecord(**{k: row[k] for k in ("id", "spec", "cron", "interval_s", "timezone", "created_by",
                                                     "created_at", "last_run_at", "last_job_id")},
                              next_run_at=nxt.timestamp() if nxt else None)

    async def list_schedules(self) -> builtins.list[ScheduleRecord]:
        return [self._public_schedule(r) for r in await db.list_schedules(self.engine)]

    async def delete_schedule(self, schedule_id: int) -> None:
        announce = changes.Change(changes.SCHEDULE, self.settings.node_name, number=schedule_id)
        if not await db.delete_schedule(self.engine, schedule_id, announce=announce):
            raise ScheduleNotFoundError(schedule_id)
        self.scheduler.remove(f"schedule-{schedule_id}")

    # ---- housekeeping ----

    async def expire_outputs(self) -> int:
        """Remove the results (and chunk files) of jobs finished longer ago than job_retention_s."""
        removed = 0
        before = time.time() - self.settings.job_retention_s
        for row in await db.finished_before(self.engine, before):
            await in_store_thread(self.runner.store.delete_prefix, f"jobs/{row['id']}/")
            await db.drop_chunks(self.engine, row["id"])
            await db.set_job(self.engine, row["id"], result_key=None)
            removed += 1
        return removed
