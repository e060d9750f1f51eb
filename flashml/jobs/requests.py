"""The body of POST /api/v1/jobs: what to score and how, now or on a schedule.

Decoded strictly by ``flashml.records.parse_body`` (the API from the request, the console from its form); the
job service then checks it against the dataset and the model's signature.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from flashml.records import Body

OUTPUT_FORMAT_HINT = "output_format is one of csv, jsonl, npy, npz, parquet."


class ScheduleBody(Body):
    """Either ``cron`` (five fields, crontab style) or ``interval_s``, in ``timezone`` (IANA, default UTC)."""

    cron: Annotated[str, Meta(description='five fields, e.g. "0 2 * * *"')] | None = None
    interval_s: Annotated[float, Meta(description="seconds between runs")] | None = None
    timezone: Annotated[str, Meta(description="an IANA time zone such as Europe/Paris")] | None = None


class JobRequest(Body):
    """Score a dataset with a model: now, or on a schedule when ``schedule`` is there."""

    hints = {
        "model": ("bad_model", "model names the model that scores the dataset."),
        "dataset": ("bad_dataset_id", "dataset is the id of an uploaded dataset (POST /api/v1/datasets)."),
        "version": ("bad_version", "version is a version number or an alias name."),
        "output_format": ("bad_output_format", OUTPUT_FORMAT_HINT),
        "chunk_rows": ("bad_chunk_rows", "chunk_rows is a whole number from 1 to 1000000."),
        "on_bad_row": ("bad_on_bad_row", "on_bad_row is skip or fail."),
        "mapping": ("bad_mapping", "mapping is an object {input name: column name}."),
        "schedule": ("bad_schedule", 'schedule is {"cron": "0 2 * * *"} or {"interval_s": 3600}, with an optional '
                                     '"timezone".'),
    }

    model: Annotated[str, Meta(min_length=1)]
    dataset: Annotated[str, Meta(min_length=1, description="a dataset's id")]
    version: Annotated[int | str, Meta(description="a version number or an alias; none: what serves")] | None = None
    output_format: Literal["csv", "jsonl", "npy", "npz", "parquet"] = "csv"
    chunk_rows: Annotated[int, Meta(ge=1, le=1_000_000, description="rows per chunk; default: the setting "
                                                                     "job_chunk_rows")] | None = None
    on_bad_row: Annotated[Literal["skip", "fail"], Meta(description="skip: log the row and go on; fail: stop")] \
        = "skip"
    mapping: Annotated[dict[str, str], Meta(description="input name -> column name")] = {}
    schedule: ScheduleBody | None = None
