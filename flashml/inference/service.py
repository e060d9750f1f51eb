"""Run one V2 inference request: find the version, check the tensors, run, encode the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from random import random
from typing import Any, NoReturn

from flashml.auth.principal import Principal
from flashml.db import models as db
from flashml.errors import (
    BadRequestError,
    ConflictError,
    FlashMLError,
    ForbiddenError,
    ModelNotFoundError,
    NotFoundError,
    VersionNotFoundError,
)
from flashml.inference.shadow import ShadowService
from flashml.monitoring.prediction_log import PredictionLog
from flashml.protocol.triton_config import PLATFORM
from flashml.protocol.triton_stats import model_stats
from flashml.protocol.v2_request import parse_infer_request
from flashml.protocol.v2_response import encode_infer_response
from flashml.registry.aliases import NUMBER, Route
from flashml.registry.response_cache import request_key
from flashml.registry.service import RegistryService
from flashml.runtime.pool import LoadedModel
from flashml.runtime.runner import ModelRuntimeError
from flashml.storage.base import StorageUnavailableError
from flashml.telemetry import RequestMetrics
from flashml.telemetry.request_context import request_id

PRIORITY_ONLINE = 0  # always ahead of batch-job requests (priority 1)
# JSON up to this is read on the event loop (handing it to a thread costs more than reading it); more in a
# thread of this pool, which reads large JSON in pieces so the loop keeps answering meanwhile.
DECODE_INLINE_BYTES = 256 * 1024
_decode_pool = ThreadPoolExecutor(2, thread_name_prefix="flashml-decode")


def online_priority(requested: int, default: float = PRIORITY_ONLINE) -> float:
    """The queue level of an online request with Triton's ``priority`` parameter (0: the default; 1 the highest,
    larger numbers lower): 1 goes ahead of requests that name none, 2 and more after them in that order, and
    every online request stays ahead of batch jobs (level 1) as before."""
    if requested == 0:
        return default
    if requested == 1:
        return PRIORITY_ONLINE - 1
    return PRIORITY_ONLINE + 1 - 1 / requested  # 2 -> 0.5, 3 -> 0.67, ...: below the default, above jobs


class InferenceFailedError(FlashMLError):
    status = 500
    code = "inference_failed"


def tag_version(exc: FlashMLError, loaded: LoadedModel | None) -> None:
    """An error raised after a version was picked says which version answered, like a success does."""
    if loaded is not None:
        exc.headers = {**(exc.headers or {}), "FlashML-Model-Version": str(loaded.version)}


class InferenceService:
    def __init__(self, registry: RegistryService, limiter: Callable[[Principal], None] | None = None,
                 metrics: RequestMetrics | None = None, shadow: ShadowService | None = None,
                 predictions: PredictionLog | None = None) -> None:
        self.registry = registry
        self.limiter = limiter  # per-key rate limit and daily quota (KeyService.admit); raises 429
        self.metrics = metrics or RequestMetrics()  # every infer call: status and time from arrival to answer
        self.pool = registry.pool
        self.shadow = shadow  # mirrors a share of an alias's requests to its shadow version
        self.predictions = predictions  # logs a sampled share of the answers of models that turned it on
        self.logged = predictions.active if predictions is not None else {}  # model -> its log's settings, if on

    async def resolve(self, principal: Principal, model: str, version: str | None, *,
                      routing_key: str | None = None) -> LoadedModel:
        """The loaded version that answers, or the right 403/404/409.

        ``version`` is a number, an alias name, or empty: the ``production`` alias when set, else the newest
        ready version. An alias that splits traffic picks by ``routing_key`` (default: the API key's id).
        """
        return (await self._resolve(principal, model, version, routing_key))[0]

    async def _resolve(self, principal: Principal, model: str, version: str | None, routing_key: str | None
                       ) -> tuple[LoadedModel, str | None, Route | None]:
        """The loaded version, and the alias (name, route) that picked it, if one did."""
        if not principal.may_infer(model):
            raise ForbiddenError(f"This API key may not use model {model!r}.", code="model_not_allowed")
        number, alias, route = await self._number(model, version,
                                                  principal.key_id if routing_key is None else routing_key)
        if number is None:
            await self._explain_missing(model, None)
        loaded = self.pool.get(model, number)
        if loaded is None:
            for _ in range(3):  # made room for others: load it again, and wait (a load may unload it again)
                if (model, number) not in self.registry.memory.unloaded:
                    break
                await self.registry.memory.load_on_demand(model, number)
                loaded = self.pool.get(model, number)
                if loaded is not None:
                    break
            if loaded is None:
                await self._explain_missing(model, number)
        return loaded, alias, route

    async def _number(self, model: str, version: str | None, routing_key: str
                      ) -> tuple[int | None, str | None, Route | None]:
        """The version number the V2 version field names, from memory (None: no version is ready), and the
        alias that named it."""
        if not version:  # None or "": the production alias, else the newest ready version (what pages show)
            serving = self.registry.serving(model)
            if serving is None:
                return None, None, None
            return serving.pick(routing_key), serving.alias, serving.route if serving.alias else None
        aliases = self.registry.aliases
        if NUMBER.match(version):
            return int(version), None, None
        route = aliases.route(model, version)
        if route is None:
            if await db.get_model(self.registry.engine, model) is None:
                raise ModelNotFoundError(model)
            raise NotFoundError(f"Model {model!r} has no version or alias {version!r}: the version field takes a "
                                f"version number or an alias name (GET /api/v1/models/{model}/aliases lists them).",
                                code="version_not_found")
        return route.pick(routing_key), version, route

    async def _explain_missing(self, model: str, number: int | None) -> NoReturn:
        engine = self.registry.engine
        if await db.get_model(engine, model) is None:
            raise ModelNotFoundError(model)
        if number is None:
            raise ConflictError(f"Model {model!r} has no ready version yet.", code="model_not_ready")
        row = await db.get_version(engine, model, number)
        if row is None:
            raise VersionNotFoundError(model, number)
        if (model, number) in self.registry.waiting_for_store:  # its files are not cached and the store is down
            raise StorageUnavailableError(f"loading {model} v{number}")
        raise ConflictError(f"{model} v{number} is {row['state']}, not ready to serve.", code="version_not_ready")

    async def infer(self, principal: Principal, model: str, version: str | None, body: bytes,
                    header_length: int | None, *, timeout_us: int | None = None,
                    priority: int = PRIORITY_ONLINE, routing_key: str | None = None) -> tuple[bytes, dict[str, str]]:
        """One V2 request through the version's scheduler. ``timeout_us``: the header's; the body's wins."""
        started, loaded, status = time.perf_counter(), None, 500  # anything unexpected counts as a 500
        try:
            if self.limiter:
                self.limiter(principal)
            loaded, alias, route = await self._resolve(principal, model, version, routing_key)
            mirror = (alias, route.shadow) if route is not None and route.shadow and self.shadow else None
            answer = await self._answer(loaded, principal, model, body, header_length, timeout_us, priority, mirror)
            status = 200
            return answer
        except FlashMLError as exc:
            status = exc.status
            tag_version(exc, loaded)
            raise
        finally:  # requests for a model that serves nothing all count under "" (bounded memory)
            name = model if loaded or model in self.registry.latest_ready else ""
            self.metrics.record(name, loaded.version if loaded else None, status, time.perf_counter() - started)

    async def _answer(self, loaded: LoadedModel, principal: Principal, model: str, body: bytes,
                      header_length: int | None, timeout_us: int | None, priority: int,
                      mirror: tuple[Any, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        max_strings = self.registry.settings.max_request_strings
        # Binary tensors after a short JSON header cost next to nothing to read: only JSON text counts.
        if (header_length if header_length is not None else len(body)) <= DECODE_INLINE_BYTES:
            request = parse_infer_request(body, header_length, loaded.signature, max_strings)
        else:
            request = await asyncio.get_running_loop().run_in_executor(
                _decode_pool, parse_infer_request, body, header_length, loaded.signature, max_strings)
        names = [o.name for o in request.outputs] if request.outputs else [o.name for o in loaded.signature.outputs]
        cache = self.registry.response_caches.caches.get(model)  # None unless the model turned it on
        key = request_key(loaded.version, request.inputs, names) if cache is not None else b""
        outputs = cache.get(key) if cache is not None else None
        hit = outputs is not None
        if hit:
            loaded.last_used = time.time()
        try:
            if outputs is None:
                ran = time.perf_counter()
                outputs = await loaded.run(request.inputs, names, key=principal.key_id, weight=principal.weight,
                                           priority=online_priority(request.priority, priority)
                                           if priority == PRIORITY_ONLINE else priority,
                                           timeout_us=request.timeout_us or timeout_us)
                if cache is not None:
                    cache.put(key, outputs)
                if loaded.signature.sample_sizes is None:  # no made-up input ran it: learn from this request
                    self.registry.learn_from_request(loaded, request.inputs)
                if mirror is not None and self.shadow is not None:  # a background task at most; never waited for
                    self.shadow.offer(model, mirror[0], mirror[1], request.inputs, names,
                                      outputs, time.perf_counter() - ran, loaded.version)
        except ModelRuntimeError as exc:
            message = str(exc)
            if "INVALID_ARGUMENT" in message or "invalid dimensions" in message.lower():
                raise BadRequestError(f"The model refused these inputs: {message}", code="inference_failed") from exc
            raise InferenceFailedError(f"The model failed while running: {message}") from exc
        log_config = self.logged.get(model)  # None unless the model's prediction log is on: one dict lookup
        if log_config is not None and self.predictions is not None and random() < log_config.sample_rate:
            self.predictions.put(model, loaded.version, request.inputs, outputs, request_id.get(), log_config)
        if sum(a.nbytes for n, a in outputs.items() if not request.wants_binary(n)) <= DECODE_INLINE_BYTES:
            body_out, headers = encode_infer_response(model, str(loaded.version), request.id, outputs, request,
                                                      loaded.signature)
        else:  # a large JSON answer is written in the decode pool too
            body_out, headers = await asyncio.get_running_loop().run_in_executor(
                _decode_pool, encode_infer_response, model, str(loaded.version), request.id, outputs, request,
                loaded.signature)
        headers["FlashML-Model-Version"] = str(loaded.version)
        if cache is not None:
            headers["FlashML-Cache"] = "hit" if hit else "miss"
        return body_out, headers

    async def statistics(self, principal: Principal, model: str | None, version: str | None) -> dict[str, Any]:
        """Triton's statistics of the loaded versions: all the caller may use, one model's, or one version's."""
        if model is None:
            chosen = [v for v in self.pool.loaded() if principal.may_infer(v.model)]
        elif version is not None:
            chosen = [await self.resolve(principal, model, version)]
        else:
            await self.resolve(principal, model, None)  # 403 or 404 as for inference
            chosen = [v for v in self.pool.loaded() if v.model == model]
        chosen.sort(key=lambda v: (v.model, v.version))
        return {"model_stats": [model_stats(v) for v in chosen]}

    def metadata(self, loaded: LoadedModel) -> dict[str, Any]:
        ready = sorted(v.version for v in self.pool.loaded() if v.model == loaded.model)
        sig = loaded.signature
        return {"name": loaded.model, "versions": [str(v) for v in ready], "platform": PLATFORM,
                "inputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in sig.inputs],
                "outputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in sig.outputs]}
