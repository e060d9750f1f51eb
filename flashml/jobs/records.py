"""What the job services answer with: datasets, batch jobs with their progress, schedules and log entries."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from flashml.records import Record


class DatasetRecord(Record):
    """An uploaded dataset: its format, rows and columns (the model's inputs are fed from them)."""

    id: str
    name: str
    format: str  # csv, jsonl, npy, npz, parquet or imagezip
    size_bytes: int
    rows: int
    columns: list[dict[str, Any]]
    created_by: str
    created_at: float


class JobRecord(Record):
    """A batch scoring job with its progress: rows done, rows per second and ETA of the current run."""

    id: int
    model: str
    version: str | None  # as asked: a number, an alias, or None for the served version
    resolved_version: int | None  # the version the job runs on
    dataset_id: str
    output_format: str
    chunk_rows: int
    on_bad_row: str  # skip or fail
    mapping: dict[str, str] | None  # model input -> dataset column
    schedule_id: int | None
    state: str  # queued, running, paused, succeeded, failed or cancelled
    rows_total: int
    rows_done: int
    rows_bad: int
    error: dict[str, Any] | None
    result_bytes: int | None
    created_by: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: float  # 0 to 1
    rows_per_s: float | None
    eta_s: float | None
    result_url: str | None  # where a succeeded job's result downloads from
    node: str | None = None  # the node that claimed it last (several nodes: the one running it)


class ScheduleRecord(Record):
    """A job spec run on a cron schedule or an interval."""

    id: int
    spec: dict[str, Any]
    cron: str | None
    interval_s: float | None
    timezone: str
    created_by: str
    created_at: float
    last_run_at: float | None
    last_job_id: int | None
    next_run_at: float | None


class LogEntry(Record):
    at: float
    level: str
    row: int | None  # the dataset row an error is about
    message: str


class HousekeepingRecord(Record):
    """One housekeeping task: its last run and the next."""

    task: str
    last_run_at: float | None
    duration_s: float | None
    removed: int | None
    error: str | None
    next_run_at: float | None


class JobCreated(Record):
    """What POST /api/v1/jobs answers: the job queued now, or the schedule that will run it."""

    job: JobRecord | UnsetType = UNSET
    schedule: ScheduleRecord | UnsetType = UNSET
