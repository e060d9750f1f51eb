"""A dataset uploaded for batch jobs as a drift reference: its first rows, run through the version once.

Drift detection (``monitoring/drift_service.py``) lives below the jobs layer and cannot read datasets; the
composition root hands it this reader instead. The rows feed the version's inputs the way a batch job's do
(``mapping.resolve_mapping``: each input takes the column of its name), and the version's answers to them are
the output's reference. Each row becomes one prediction of one row, so a log that keeps only each request's
means is compared with the rows' own values, as with requests of one row. Zips of images are refused.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import jobs as db
from flashml.errors import BadRequestError, DatasetNotFoundError
from flashml.inference.service import InferenceService
from flashml.jobs.datasets import datasets_cache
from flashml.jobs.formats import read_chunks
from flashml.jobs.job_runner import PRIORITY_BATCH, SUB_BATCH_ROWS, SYSTEM
from flashml.jobs.mapping import resolve_mapping, to_inputs
from flashml.monitoring.prediction_log_codec import summary
from flashml.monitoring.prediction_log_records import LoggedPrediction
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore
from flashml.storage.threads import in_store_thread


class DatasetReference:
    """``ReferenceRows`` for the drift service: ``exists`` when its settings name a dataset, ``sample`` per round
    until the version's reference is read (then the drift service keeps it)."""

    def __init__(self, engine: AsyncEngine, store: ArtifactStore, inference: InferenceService,
                 settings: Settings) -> None:
        self.engine, self.store, self.inference = engine, store, inference
        self.cache = datasets_cache(settings)

    async def exists(self, dataset_id: str) -> bool:
        return await db.get_dataset(self.engine, dataset_id) is not None

    async def sample(self, model: str, version: int, dataset_id: str, rows: int) -> list[LoggedPrediction]:
        dataset = await db.get_dataset(self.engine, dataset_id)
        if dataset is None:
            raise DatasetNotFoundError(dataset_id)
        if dataset["format"] == "images":
            raise BadRequestError("a zip of images has no columns to compare", code="bad_drift_config")
        loaded = await self.inference.resolve(SYSTEM, model, str(version), routing_key="drift-reference")
        mapping = resolve_mapping(loaded.signature, dataset["columns"], None)
        path = await in_store_thread(self._file, dataset)
        chunks = read_chunks(path, dataset["format"], dataset["name"], rows, 0)
        chunk = await asyncio.to_thread(next, chunks, None)
        if chunk is None:
            return []
        inputs, row_ids, _ = await asyncio.to_thread(to_inputs, chunk, loaded.signature, mapping)
        names = [o.name for o in loaded.signature.outputs]
        pieces = []
        for start in range(0, len(row_ids), SUB_BATCH_ROWS):  # behind online requests, like a batch job
            pieces.append(await loaded.run({k: v[start:start + SUB_BATCH_ROWS] for k, v in inputs.items()}, names,
                                           key="drift-reference", weight=1, priority=PRIORITY_BATCH, timeout_us=0))
        outputs = {n: np.concatenate([p[n] for p in pieces]) for n in names} if pieces else {}
        return await asyncio.to_thread(_one_row_each, version, inputs, outputs, len(row_ids))

    def _file(self, dataset: dict[str, Any]) -> Path:
        """The dataset's file on this machine (a remote store's is fetched once, into the job runner's cache)."""
        local = self.store.local_path(dataset["object_key"])
        if local is not None:
            return local
        dest = self.cache / dataset["id"] / Path(dataset["object_key"]).name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.store.get_file(dataset["object_key"], dest)
        return dest


def _one_row_each(version: int, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                  rows: int) -> list[LoggedPrediction]:
    now, out = time.time(), []
    for i in range(rows):
        row_in = {n: a[i:i + 1] for n, a in inputs.items()}
        row_out = {n: a[i:i + 1] for n, a in outputs.items()}
        out.append(LoggedPrediction(at=now, version=version, request_id=None, inputs=row_in,
                                    input_summary={n: summary(a) for n, a in row_in.items()}, outputs=row_out,
                                    output_summary={n: summary(a, top=True) for n, a in row_out.items()}))
    return out
