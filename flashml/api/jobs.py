"""Management API for datasets, batch jobs, their schedules and housekeeping (viewers read, maintainers act)."""

from __future__ import annotations

import asyncio
import uuid

from litestar import Controller, Request, Response, delete, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath
from litestar.response import File

from flashml.api.models import source_name
from flashml.jobs.datasets import DatasetService
from flashml.jobs.housekeeping import Housekeeping
from flashml.jobs.records import (
    DatasetRecord,
    HousekeepingRecord,
    JobCreated,
    JobRecord,
    LogEntry,
    ScheduleRecord,
)
from flashml.jobs.requests import JobRequest
from flashml.jobs.results import MEDIA_TYPES
from flashml.jobs.service import JobService
from flashml.storage.threads import in_store_thread
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide
from flashml.web.params import RowId


class DatasetsController(Controller):
    path = "/api/v1/datasets"
    tags = ["Batch jobs"]
    dependencies = provide("datasets")

    @post("/", summary="Upload a dataset (CSV, JSON Lines, .npy, .npz, Parquet, zip of images) as the raw body; "
                        "?filename= names it",
          request_max_body_size=None, status_code=201)
    async def upload_dataset(self, request: Request, maintainer: Authenticated, datasets: Injected[DatasetService],
                             filename: str | None = None) -> DatasetRecord:
        return await datasets.upload(source_name(request, filename), request.stream(),
                                              content_length=request.content_length, actor=maintainer.actor)

    @get("/", summary="List datasets")
    async def list_datasets(self, viewer: Authenticated, datasets: Injected[DatasetService]) -> list[DatasetRecord]:
        return await datasets.list()

    @get("/{dataset_id:str}", summary="A dataset: format, rows, columns")
    async def get_dataset(self, dataset_id: str, viewer: Authenticated,
                          datasets: Injected[DatasetService]) -> DatasetRecord:
        return await datasets.get(dataset_id)

    @delete("/{dataset_id:str}", summary="Delete a dataset and its stored file (409 while a queued, running or "
                                         "paused job or a schedule uses it)", status_code=204)
    async def delete_dataset(self, dataset_id: FromPath[str], maintainer: Authenticated,
                             datasets: Injected[DatasetService]) -> None:
        await datasets.delete(dataset_id, actor=maintainer.actor)


async def result_file(jobs: JobService, job_id: RowId) -> File:
    """The job's result file from the store (copied to scratch first when the store is remote)."""
    row, key = await jobs.result(job_id)
    store = jobs.runner.store
    fmt = row["output_format"]
    name = f"job-{job_id}-result.{fmt}"
    local = store.local_path(key)
    cleanup = None
    if local is None:
        local = jobs.runner.work / f"download-{uuid.uuid4().hex}"
        await in_store_thread(store.get_file, key, local)
        cleanup = BackgroundTask(asyncio.to_thread, local.unlink, True)
    return File(local, filename=name, media_type=MEDIA_TYPES[fmt], background=cleanup)


class JobsController(Controller):
    path = "/api/v1/jobs"
    tags = ["Batch jobs"]
    dependencies = provide("jobs")

    @post("/", summary="Score a dataset now, or on a schedule (cron or interval_s, timezone)", status_code=201,
          dependencies=json_body(JobRequest))
    async def create_job(self, payload: Injected[JobRequest], maintainer: Authenticated,
                         jobs: Injected[JobService]) -> Response[JobCreated]:
        kind, record = await jobs.create(payload, actor=maintainer.actor)
        if isinstance(record, JobRecord):
            return Response(JobCreated(job=record), status_code=201, headers={"Location": f"/api/v1/jobs/{record.id}"})
        return Response(JobCreated(schedule=record), status_code=201,
                        headers={"Location": f"/api/v1/schedules/{record.id}"})

    @get("/", summary="List jobs, newest first, with progress")
    async def list_jobs(self, viewer: Authenticated, jobs: Injected[JobService]) -> list[JobRecord]:
        return await jobs.list()

    @get("/{job_id:int}", summary="A job: state, rows done, rows/s, ETA")
    async def get_job(self, job_id: RowId, viewer: Authenticated, jobs: Injected[JobService]) -> JobRecord:
        return await jobs.get(job_id)

    @get("/{job_id:int}/log", summary="A job's log: errors with their row numbers, and events")
    async def job_log(self, job_id: RowId, viewer: Authenticated, jobs: Injected[JobService]) -> list[LogEntry]:
        return await jobs.log(job_id)

    @get("/{job_id:int}/result", summary="Download a succeeded job's result file")
    async def job_result(self, job_id: RowId, viewer: Authenticated, jobs: Injected[JobService]) -> File:
        return await result_file(jobs, job_id)

    @post("/{job_id:int}/{action:str}", summary="cancel, pause, resume or retry a job", status_code=200)
    async def control_job(self, job_id: RowId, action: str, maintainer: Authenticated, jobs: Injected[JobService]
                          ) -> JobRecord:
        return await jobs.control(job_id, action, actor=maintainer.actor)


class SchedulesController(Controller):
    path = "/api/v1/schedules"
    tags = ["Batch jobs"]
    dependencies = provide("jobs")

    @get("/", summary="List job schedules with their next run")
    async def list_schedules(self, viewer: Authenticated, jobs: Injected[JobService]) -> list[ScheduleRecord]:
        return await jobs.list_schedules()

    @delete("/{schedule_id:int}", summary="Delete a schedule (its jobs stay)", status_code=204)
    async def delete_schedule(self, schedule_id: RowId, maintainer: Authenticated, jobs: Injected[JobService]) -> None:
        await jobs.delete_schedule(schedule_id)


class HousekeepingController(Controller):
    path = "/api/v1/housekeeping"
    tags = ["Batch jobs"]
    dependencies = provide("housekeeping")

    @get("/", summary="Housekeeping tasks: last run, what it removed, errors, next run")
    async def housekeeping(self, viewer: Authenticated,
                           housekeeping: Injected[Housekeeping]) -> list[HousekeepingRecord]:
        return await housekeeping.status()
