"""Predict: resolve the version, pre-process items in worker threads, batch their tensors, answer per item."""

from __future__ import annotations

import asyncio
import time
from random import random
from typing import Any

from flashml.auth.principal import Principal
from flashml.db import models as db
from flashml.errors import BadRequestError, ConflictError, FlashMLError
from flashml.inference.service import PRIORITY_ONLINE, InferenceFailedError, InferenceService, tag_version
from flashml.runtime.pool import LoadedModel
from flashml.runtime.runner import ModelRuntimeError
from flashml.settings import Settings
from flashml.storage.threads import in_store_thread
from flashml.tasks.config import TaskConfig, parse_task, task_model
from flashml.tasks.requests import PredictItems, check_count
from flashml.tasks.runtime import TaskRuntime
from flashml.telemetry.request_context import request_id


class PredictService:
    def __init__(self, inference: InferenceService, settings: Settings) -> None:
        self.inference = inference
        self.settings = settings
        self._runtimes: dict[tuple[str, int], tuple[LoadedModel, TaskRuntime]] = {}

    async def task_config(self, model: str, number: int) -> TaskConfig:
        row = await db.get_version(self.inference.registry.engine, model, number)
        return parse_task((row or {}).get("manifest") or {})

    async def runtime(self, loaded: LoadedModel) -> TaskRuntime:
        """The version's task processing, built once per load (a reload builds it again)."""
        key = (loaded.model, loaded.version)
        cached = self._runtimes.get(key)
        if cached is not None and cached[0] is loaded:
            return cached[1]
        registry = self.inference.registry
        row = await db.get_version(registry.engine, loaded.model, loaded.version)
        config = parse_task((row or {}).get("manifest") or {})
        if config.task == "raw":
            raise ConflictError(f"{loaded.model} v{loaded.version} is a raw tensor model (no task in its "
                                "flashml.toml); use POST /v2/models/{model}/infer.", code="not_a_task_model")
        folder = await in_store_thread(registry.cache.ensure, loaded.model, loaded.version,
                                         ((row or {}).get("report") or {}).get("checksums"))
        runtime = await asyncio.to_thread(TaskRuntime.build, config, loaded.signature, folder)
        self._runtimes = {k: v for k, v in self._runtimes.items() if registry.pool.get(*k) is v[0]}
        self._runtimes[key] = (loaded, runtime)
        return runtime

    async def predict(self, principal: Principal, model: str, version: str | None, items: PredictItems, *,
                      routing_key: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """One predict call, counted in the request metrics and the key's limits like a V2 infer."""
        inference = self.inference
        started, loaded, status = time.perf_counter(), None, 500
        try:
            if inference.limiter:
                inference.limiter(principal)
            loaded = await inference.resolve(principal, model, version, routing_key=routing_key)
            answer = await self._answer(loaded, principal, items)
            status = 200
            return answer, {"FlashML-Model-Version": str(loaded.version)}
        except FlashMLError as exc:
            status = exc.status
            tag_version(exc, loaded)
            raise
        finally:
            name = model if loaded or model in inference.registry.latest_ready else ""
            inference.metrics.record(name, loaded.version if loaded else None, status, time.perf_counter() - started)

    async def _answer(self, loaded: LoadedModel, principal: Principal, items: PredictItems) -> dict[str, Any]:
        runtime = await self.runtime(loaded)
        want = runtime.config.kind
        if items.kind != want:
            raise BadRequestError(f"{loaded.model} is {task_model(runtime.config.task)}: send {want}, not "
                                  f"{items.kind}.", code="wrong_input_kind",
                                  details={"task": runtime.config.task, "expects": want})
        check_count(items, self.settings.predict_max_items)
        max_pixels = self.settings.predict_max_image_pixels
        # Every item is checked and pre-processed (in worker threads) before any runs: a bad one costs no model time.
        prepared = await asyncio.gather(*(asyncio.to_thread(runtime.prepare, item, i, max_pixels)
                                          for i, item in enumerate(items.items)))
        scheduling = {"key": principal.key_id, "weight": principal.weight, "priority": PRIORITY_ONLINE}
        outputs = await asyncio.gather(*(self._run(loaded, runtime, inputs, i, scheduling)
                                         for i, (inputs, _) in enumerate(prepared)))
        self._log(loaded, prepared, outputs)
        results = await asyncio.to_thread(lambda: [runtime.finish(out, context) for out, (_, context)
                                                   in zip(outputs, prepared, strict=True)])
        return {"model": loaded.model, "version": loaded.version, "task": runtime.config.task,
                "predictions": results}

    def _log(self, loaded: LoadedModel, prepared: list[tuple[dict[str, Any], Any]],
             outputs: list[dict[str, Any]]) -> None:
        """A sampled call goes to the model's prediction log as one prediction per item, with the tensors the model
        saw (the pre-processed image or tokens) and answered (before post-processing), under the call's request id."""
        inference = self.inference
        config = inference.logged.get(loaded.model)  # None unless the model's log is on
        if config is None or inference.predictions is None or random() >= config.sample_rate:
            return
        for (inputs, _), answer in zip(prepared, outputs, strict=True):
            inference.predictions.put(loaded.model, loaded.version, inputs, answer, request_id.get(), config)

    @staticmethod
    async def _run(loaded: LoadedModel, runtime: TaskRuntime, inputs: dict[str, Any], index: int,
                   scheduling: dict[str, Any]) -> dict[str, Any]:
        """One item's tensors through the version's batcher, where they share batches with other requests."""
        try:
            return await loaded.run(inputs, runtime.output_names, **scheduling)
        except ModelRuntimeError as exc:
            raise InferenceFailedError(f"The model failed on item {index}: {exc}") from exc
