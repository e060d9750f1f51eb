"""Datasets for batch jobs: streamed into the artifact store under ``datasets/<id>/``, size-limited."""

from __future__ import annotations

import asyncio
import builtins
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import audit
from flashml.db import jobs as db
from flashml.errors import BadRequestError, ConflictError, DatasetNotFoundError, PayloadTooLargeError
from flashml.jobs.formats import detect_format, inspect
from flashml.jobs.imagezip import ZipLimits
from flashml.jobs.records import DatasetRecord
from flashml.registry.uploads import receive_upload
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore
from flashml.storage.scratch import ScratchSpace
from flashml.storage.threads import in_store_thread

# A job in one of these states will read its dataset again (a paused one when it resumes).
READING_STATES = ("queued", "running", "paused")


def datasets_cache(settings: Settings) -> Path:
    """Where the job runner keeps local copies of datasets held in a remote store, one folder per dataset."""
    return settings.data_dir / "cache" / "datasets"


def dataset_record(row: dict[str, Any]) -> DatasetRecord:
    return DatasetRecord(**{k: row[k] for k in ("id", "name", "format", "size_bytes", "rows", "columns", "created_by",
                                                "created_at")})


class DatasetService:
    def __init__(self, engine: AsyncEngine, store: ArtifactStore, scratch: ScratchSpace, settings: Settings) -> None:
        self.engine, self.store, self.scratch, self.settings = engine, store, scratch, settings

    async def upload(self, filename: str, chunks: AsyncIterator[bytes], *, content_length: int | None,
                     actor: str) -> DatasetRecord:
        """Stream a dataset to scratch, read its rows and columns, then store it; nothing is kept on a refusal."""
        filename = (filename or "").strip()
        if not filename or len(filename) > 200 or "/" in filename or "\\" in filename:
            raise BadRequestError("Name the dataset file (?filename=data.csv): 1 to 200 characters, no folders.",
                                  code="bad_filename")
        fmt = detect_format(filename)
        limit = self.settings.max_dataset_bytes
        if content_length is not None and content_length > limit:
            raise PayloadTooLargeError(f"The dataset is {content_length} bytes; the limit is {limit} bytes (setting "
                                       "max_dataset_bytes).", code="dataset_too_large")
        tmp = self.scratch.new_upload_path()
        try:
            try:
                size = await receive_upload(chunks, tmp, limit)
            except PayloadTooLargeError:
                raise PayloadTooLargeError(f"The dataset is over the limit of {limit} bytes (setting "
                                           "max_dataset_bytes).", code="dataset_too_large") from None
            except BadRequestError as exc:
                if exc.code == "empty_upload":
                    raise BadRequestError("The dataset is empty: send the file as the request body.",
                                          code="empty_upload") from None
                raise
            limits = ZipLimits(self.settings.dataset_zip_max_files, self.settings.dataset_zip_max_bytes)
            rows, columns = await asyncio.to_thread(inspect, tmp, fmt, filename, limits)
            dataset_id = secrets.token_hex(8)
            key = f"datasets/{dataset_id}/data.{fmt}"  # the file's own name may not suit a storage key
            await in_store_thread(self.store.put_file, key, tmp, move=True)
        finally:
            tmp.unlink(missing_ok=True)
        await db.add_dataset(self.engine, id=dataset_id, name=filename, format=fmt, size_bytes=size, rows=rows,
                             columns=columns, object_key=key, created_by=actor)
        return await self.get(dataset_id)

    async def get(self, dataset_id: str) -> DatasetRecord:
        row = await db.get_dataset(self.engine, dataset_id)
        if row is None:
            raise DatasetNotFoundError(dataset_id)
        return dataset_record(row)

    async def list(self) -> list[DatasetRecord]:
        return [dataset_record(r) for r in await db.list_datasets(self.engine)]

    async def users(self, dataset_id: str) -> tuple[builtins.list[int], builtins.list[int]]:  # `list` is a method here
        """The ids of the jobs that will read the dataset again and of the schedules that score it."""
        return await db.dataset_users(self.engine, dataset_id, READING_STATES)

    async def delete(self, dataset_id: str, *, actor: str) -> None:
        """Delete a dataset and its stored file; refused (409) while a job that will read it or a schedule uses it.

        Finished jobs keep their results and their dataset id; retrying one of them then fails with
        dataset_not_found, as the job's log says.
        """
        row = await db.get_dataset(self.engine, dataset_id)
        if row is None:
            raise DatasetNotFoundError(dataset_id)
        job_ids, schedule_ids = await self.users(dataset_id)
        if job_ids or schedule_ids:
            users = [*(f"job {i}" for i in job_ids), *(f"schedule {i}" for i in schedule_ids)]
            raise ConflictError(f"Dataset {dataset_id} ({row['name']}) is in use by {', '.join(users)}: cancel "
                                "the jobs or delete the schedules first.", code="dataset_in_use",
                                details={"jobs": job_ids, "schedules": schedule_ids})
        if not await db.delete_dataset(self.engine, dataset_id):
            raise DatasetNotFoundError(dataset_id)  # deleted meanwhile by another call
        await in_store_thread(self.store.delete_prefix, f"datasets/{dataset_id}/")
        await asyncio.to_thread(shutil.rmtree, datasets_cache(self.settings) / dataset_id, True)  # the local copy
        await audit.record(self.engine, actor, "dataset.delete", f"dataset:{dataset_id}",
                           {"name": row["name"], "format": row["format"], "rows": row["rows"]})
