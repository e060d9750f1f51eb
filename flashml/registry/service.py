"""Models and versions: upload, validate, publish, serve, archive, delete.

An upload is streamed to a temporary file, given the next version number in state ``validating``,
validated (safe extraction, ONNX checks, a warm-up in a subprocess), moved into place with one rename,
loaded, and only then marked ``ready``. Any failure marks it ``failed`` with its reasons and removes
every file it made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import audit, changes
from flashml.db import models as db
from flashml.db import nodes as nodes_db
from flashml.errors import (
    BadRequestError,
    ConflictError,
    FlashMLError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ValidationFailedError,
    VersionNotFoundError,
)
from flashml.registry import serving
from flashml.registry.aliases import AliasService, Serving
from flashml.registry.archive import BundleLimits
from flashml.registry.bundle import validate_upload
from flashml.registry.memory import MemoryService
from flashml.registry.probe import run_probe
from flashml.registry.records import (
    BatcherStats,
    ConfigView,
    ModelRecord,
    ModelSummary,
    ServingConfig,
    ServingInfo,
    VersionRecord,
    VersionSummary,
)
from flashml.registry.requests import ConfigChange, PinChange
from flashml.registry.response_cache import ResponseCacheService
from flashml.registry.uploads import receive_upload
from flashml.runtime.autotune import batchable
from flashml.runtime.batching.hints import BatchingHints
from flashml.runtime.pool import LoadedModel, ModelPool
from flashml.runtime.runner import ModelRuntimeError
from flashml.runtime.samples import shape_sizes
from flashml.settings import Settings
from flashml.signature import Signature
from flashml.storage.base import CHECKSUMS_NAME, ArtifactStore, StorageUnavailableError
from flashml.storage.cache import ModelCache, version_prefix
from flashml.storage.scratch import ScratchSpace, remove_path
from flashml.storage.threads import in_store_thread

log = logging.getLogger("flashml.registry")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def bundle_key(user: str, model: str, version: int, source_name: str) -> str:
    """``uploads/<user>/<model>-v<version>.<ext>``: where the upload is kept as it was sent."""
    lower = source_name.lower()
    ext = next((e for e in ("tar.gz", "tgz", "zip", "onnx") if lower.endswith("." + e)), "bin")
    safe_user = _UNSAFE.sub("_", user).strip(".") or "unknown"
    return f"uploads/{safe_user}/{model}-v{version}.{ext}"


# Names a V2 route takes for itself: /v2/models/stats is every version's statistics, not a model's metadata.
RESERVED_MODEL_NAMES = frozenset({"stats"})


def check_model_name(name: str) -> None:
    if not MODEL_NAME.match(name or "") or ".." in name:
        raise BadRequestError("A model name is 1 to 128 letters, digits or . _ -, starting with a letter or digit.",
                              code="bad_model_name")
    if name.lower() in RESERVED_MODEL_NAMES:
        raise BadRequestError(f"{name!r} cannot name a model: /v2/models/{name} is the V2 statistics route.",
                              code="bad_model_name")


def serving_config(stored: dict[str, Any] | None) -> ServingConfig | None:
    """A version's stored flat config as its record (None before publication)."""
    return None if stored is None else msgspec.convert(stored, ServingConfig)


def _loaded_fields(loaded: LoadedModel | None) -> dict[str, Any]:
    if loaded is None:
        return {}
    return {"device": loaded.device, "providers": loaded.providers,
            "stats": msgspec.convert(loaded.batcher.stats(), BatcherStats)}


def version_record(row: dict[str, Any], loaded: LoadedModel | None = None,
                   progress: list[dict[str, Any]] | None = None) -> VersionRecord:
    extra = _loaded_fields(loaded)
    if loaded is not None:
        extra.update(last_used_at=loaded.last_used or None, memory_bytes=loaded.memory_bytes,
                     host_memory_bytes=loaded.host_memory_bytes, gpu_memory_bytes=loaded.gpu_memory_bytes)
    if row["state"] == "validating" and progress is not None:
        extra["progress"] = list(progress)  # the steps done so far, while it validates
    return VersionRecord(
        model=row["model"], version=row["version"], state=row["state"], created_by=row["created_by"],
        created_at=row["created_at"], updated_at=row["updated_at"], source_name=row["source_name"],
        size_bytes=row["size_bytes"], sha256=row["sha256"], signature=row["signature"], manifest=row["manifest"],
        report=row["report"], errors=row["errors"], config=serving_config(row.get("config")),
        performance=row.get("perf"), loaded=loaded is not None, pinned=bool(row.get("pinned")),
        warnings=_warnings(row, loaded), **extra)


def config_view(row: dict[str, Any], loaded: LoadedModel | None) -> ConfigView:
    return ConfigView(model=row["model"], version=row["version"], config=serving_config(row.get("config")),
                      performance=row.get("perf"), warnings=_warnings(row, loaded), **_loaded_fields(loaded))


def _warnings(row: dict[str, Any], loaded: LoadedModel | None) -> list[str]:
    """What the upload's checks only warned about, then what loading it found (e.g. CUDA asked for but the
    version runs on the CPU)."""
    return [*((row.get("report") or {}).get("warnings") or []), *(loaded.warnings if loaded is not None else [])]


_ORT_PREFIX = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")
_ORT_NODE = re.compile(r"Non-zero status code returned while running (\w+) node\. Name:'([^']*)' Status Message: ")
_ORT_SOURCE = re.compile(r"/onnxruntime_src/\S+:\d+ [^)]*\)( const)? ")


def plain_runtime_error(message: str) -> str:
    """ONNX Runtime's message without its codes and source locations: 'the Pad node: <what it said>'."""
    message = _ORT_PREFIX.sub("", message)
    message = _ORT_NODE.sub(lambda m: f"the {m[1]} node{f' {m[2]!r}' if m[2] else ''}: ", message)
    return _ORT_SOURCE.sub("", message).strip()


def _learning_refused(exc: ValidationFailedError) -> str:
    """The warning where made-up inputs at a first request's shapes broke a validation limit in the sandbox."""
    what = {"validation_memory": "went over the validation memory limit",
            "validation_timeout": "took longer than the validation timeout",
            "validation_crashed": "crashed the process running them"}.get(exc.code, "could not be run")
    return (f"Made-up inputs at the shapes of this model's first request {what} in the validation sandbox, so "
            "nothing measured it there: batching stays off (set it yourself with flashml models config).")


def guess_failed_warning(error: str, tries: int) -> str:
    """The version's warning where no made-up input ran it: valid models may need sizes no guess had."""
    return (f"FlashML could not run this model on made-up inputs ({tries} tried; the first failed with "
            f"{plain_runtime_error(error)}). It is published, but nothing checked that it answers: send it a real "
            "request first, or upload it again in a bundle whose flashml.toml declares valid inputs "
            "([warmup.<input>] with a shape and a fill, or a .npy file: see docs/models-and-uploads.md). Batching "
            "stays off until a real request shows shapes that run: auto-tune then measures at them (or set it "
            "yourself with flashml models config).")


def batch_proof_warning(proof: dict[str, Any] | None, signature: Signature, settings: Settings) -> str | None:
    """The version's warning where a batch its sandbox ran went over a validation limit or failed: batching is
    then capped at the largest that ran there (serving.within_proof). None where nothing was cut short."""
    reason = (proof or {}).get("reason")
    if proof is None or reason not in ("memory", "timeout", "error", "crashed") or not batchable(signature):
        return None
    largest, rows = proof["largest"], proof.get("stopped_at")
    batch = f"a batch of {rows} rows" if rows else "a larger batch"
    if reason == "error" and not largest:
        return (f"Auto-tune could not measure this model on made-up inputs ({plain_runtime_error(proof['error'])}); "
                "batching stays off until you set it (flashml models config).")
    if reason == "memory":
        why = (f"{batch} went over the validation memory limit ({settings.validation_memory_bytes} bytes). Raise "
               "FLASHML_VALIDATION_MEMORY_BYTES and upload the model again to batch more")
    elif reason == "timeout":
        why = (f"{batch} would not finish within the validation timeout ({settings.validation_timeout_s:g} s). "
               "Raise FLASHML_VALIDATION_TIMEOUT_S and upload the model again to batch more")
    elif reason == "error":
        why = f"{batch} of made-up inputs failed ({plain_runtime_error(proof['error'])})"
    else:
        why = f"the process running {batch} crashed"
    head = f"Batching is capped at {largest} rows" if largest >= 2 else "Batching is off"
    return (f"{head}: in the validation sandbox, {why}. Nothing runs this model in the server at a larger batch "
            "than the sandbox did.")


class RegistryService:
    def __init__(self, engine: AsyncEngine, store: ArtifactStore, scratch: ScratchSpace, cache: ModelCache,
                 pool: ModelPool, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.scratch = scratch
        self.cache = cache
        self.pool = pool
        self.settings = settings
        self.node = settings.node_name  # names this node's changes in the change feed (flashml.cluster)
        self.latest_ready: dict[str, int] = {}  # model -> newest ready version, kept in memory for inference
        self.aliases = AliasService(engine, node=self.node)  # production, staging, ...: resolved in memory too
        self.aliases.prepare = self.prepare_versions
        self.memory = MemoryService(pool, settings.memory_budget, settings.load_timeout_s, self._load_ready)
        self.response_caches = ResponseCacheService(engine, settings.response_cache_max_bytes,
                                                    settings.response_cache_max_entries, node=self.node)
        self._tasks: set[asyncio.Task] = set()
        self._learned: set[tuple[str, int]] = set()  # versions measured at a real request's shapes (or trying)
        self.progress: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (model, version) -> steps, while validating
        self.waiting_for_store: set[tuple[str, int]] = set()  # ready versions whose files could not be fetched
        # Called with (model, version) after a version is deleted and (model, None) after a model is: what the
        # layers above keep per version (the prediction log's files) goes too, so a number used again starts clean.
        self.on_delete: list[Callable[[str, int | None], Awaitable[None]]] = []
        self.upload_outcomes = {"ready": 0, "failed": 0}  # uploads that finished validation since start (/metrics)
        # (model, version) -> the stored serving config its loaded sessions follow: a change another node made to
        # it (flashml.cluster) tells a reconfigure from a reload by comparing with this
        self.configs_in_use: dict[tuple[str, int], dict[str, Any]] = {}

    def _announce(self, kind: str, model: str, number: int | None = None) -> changes.Change:
        """The change feed's row that tells the other nodes sharing the database (harmless with one node); the db
        function that stores the change writes it in the same transaction."""
        return changes.Change(kind, self.node, model=model, number=number)

    # ---- upload and publication ----

    async def upload(self, model: str, chunks: AsyncIterator[bytes], *, source_name: str, actor: str,
                     content_length: int | None, user: str | None = None) -> tuple[VersionRecord, bool]:
        """Receive, validate and publish one upload. Returns (version record, finished?)."""
        check_model_name(model)
        limit = self.settings.max_upload_bytes
        if content_length is not None and content_length > limit:
            raise PayloadTooLargeError(f"The upload is {content_length} bytes; the limit is {limit} bytes "
                                       "(setting max_upload_bytes).", code="upload_too_large")
        await self.check_store("this upload")
        tmp = self.scratch.new_upload_path()
        size = await receive_upload(chunks, tmp, limit)
        return await self.publish_file(model, tmp, size=size, source_name=source_name, actor=actor, user=user)

    async def check_store(self, what: str) -> None:
        """Fail fast (503 storage_unavailable) when the artifact store is down, before any work starts."""
        try:
            await in_store_thread(self.store.check)
        except FlashMLError:
            raise
        except OSError as exc:
            raise StorageUnavailableError(what, exc) from None

    async def publish_file(self, model: str, tmp: Path, *, size: int, source_name: str, actor: str,
                           user: str | None = None) -> tuple[VersionRecord, bool]:
        """Give a received file the next version number, then validate and publish it (consumes ``tmp``)."""
        user = user or actor.split("/", 1)[0]
        try:
            version = await db.create_version(self.engine, model, created_by=actor, source_name=source_name,
                                              size_bytes=size, node=self.node)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        await audit.record(self.engine, actor, "version.upload", f"{model}/v{version['version']}",
                           {"source": source_name, "bytes": size})
        task = asyncio.create_task(self._validate_and_publish(version, tmp, user))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.settings.upload_wait_s)
        except TimeoutError:
            return await self.get_version(model, version["version"]), False
        return await self.get_version(model, version["version"]), True

    async def _validate_and_publish(self, version: dict[str, Any], upload: Path, user: str) -> None:
        model, number, vid = version["model"], version["version"], version["id"]
        staging = self.scratch.new_staging_dir()
        kept = bundle_key(user, model, number, version["source_name"])
        steps: list[dict[str, Any]] = []
        self.progress[(model, number)] = steps  # on_step appends: readers see the steps as they happen
        started = time.time()

        def on_step(step: str) -> None:
            steps.append({"step": step, "at": time.time()})

        try:
            bundle = await asyncio.to_thread(
                validate_upload, upload, staging,
                limits=BundleLimits(self.settings.bundle_max_members, self.settings.bundle_max_bytes,
                                    self.settings.bundle_max_ratio),
                allowed_domains=tuple(self.settings.allowed_op_domains), device=self.pool.device,
                probe_timeout_s=self.settings.validation_timeout_s,
                probe_memory_bytes=self.settings.validation_memory_bytes, on_step=on_step,
                plan_batches=lambda manifest: serving.batches_to_prove(manifest.batching, self.settings))
            on_step("publish")
            checksums = json.loads((bundle.dir / CHECKSUMS_NAME).read_text())
            try:
                await in_store_thread(self.store.put_file, kept, upload, sha256=bundle.sha256, move=True)
                await in_store_thread(self.store.publish_dir, version_prefix(model, number), bundle.dir,
                                        [*bundle.files, CHECKSUMS_NAME])
            except BaseException:
                await self._remove_objects(model, number, kept)
                raise
            on_step("load")
            signature = bundle.probe.signature
            hints = bundle.manifest.batching
            card = None
            warnings = []
            if bundle.probe.warmup_error:
                warnings.append(guess_failed_warning(bundle.probe.warmup_error, bundle.probe.warmup_tries))
            # Nothing runs the version here at a batch its sandbox did not run (none, where no guess ran it).
            proof = bundle.probe.batch_proof
            largest = proof["largest"] if proof else 0
            capped = batch_proof_warning(proof, signature, self.settings)
            if capped:
                warnings.append(capped)
            try:
                config, tune = serving.initial_config(hints, signature, self.settings,
                                                      ran=not bundle.probe.warmup_error)
                config = serving.within_proof(config, largest)
                device, batching = serving.split(config)
                final = await in_store_thread(self.cache.ensure, model, number, checksums)
                loaded = await self.pool.load(model, number, final / bundle.manifest.model, signature, batching,
                                              device)
                if tune and largest:
                    on_step("autotune")
                    try:
                        config, card = await serving.autotune(loaded, config, hints, self.settings, self.pool,
                                                              largest)
                    except ModelRuntimeError as exc:  # made-up inputs at the warm-up's sizes failed a batch
                        warnings.append(f"Auto-tune could not measure this model on made-up inputs ({exc}); "
                                        "batching stays off until you set it (flashml models config).")
                    device, batching = serving.split(config)
                    # On a GPU the sweep grew the arena to its largest batch, which ONNX Runtime keeps: fresh
                    # sessions, so the warm-up below measures the peak at the chosen max_batch_size.
                    if batching.instance_count != loaded.config.instance_count or loaded.on_gpu:
                        loaded = await self.pool.load(model, number, final / bundle.manifest.model, signature,
                                                      batching, device)
                if loaded.on_gpu:
                    await loaded.warm_up()  # the budget counts the version at its peak, not its weights alone
                await self.memory.after_load(loaded)
            except BaseException:
                await self.pool.unload(model, number)
                await self._remove_objects(model, number, kept)
                raise
            report = {"steps": steps, "seconds": round(time.time() - started, 3), "files": bundle.files,
                      "checksums": checksums, "bundle_key": kept, "storage": self.store.kind,
                      "check": _as_dict(bundle.report), "providers": bundle.probe.providers,
                      "warmup_ms": bundle.probe.warmup_ms, "warnings": warnings,
                      "guesses_failed": bool(bundle.probe.warmup_error)}
            if proof is not None:
                report["batch_proof"] = proof
            await db.update_version(self.engine, vid, state="ready", signature=signature.to_dict(),
                                    manifest=bundle.manifest.to_dict(), report=report, sha256=bundle.sha256,
                                    errors=None, config=config, perf=card,
                                    announce=self._announce(changes.VERSION, model, number))  # others load it
            self.configs_in_use[(model, number)] = config
            self.latest_ready[model] = max(self.latest_ready.get(model, 0), number)
            self.upload_outcomes["ready"] += 1
            log.info("published %s v%d", model, number)
        except FlashMLError as exc:
            self.upload_outcomes["failed"] += 1
            await self._fail(vid, steps, [{"code": exc.code, "error": exc.message, **_details(exc)}])
        except Exception:  # noqa: BLE001 - whatever broke, the version must not stay "validating"
            self.upload_outcomes["failed"] += 1
            log.exception("validation of %s v%d failed unexpectedly", model, number)
            # The exception's text is ours (paths, store replies, request ids), not the uploader's: the log has it.
            await self._fail(vid, steps, [{"code": "internal_error", "error": "The server failed while checking this "
                                           "model; its log has the details. Try the upload again."}])
        finally:
            self.progress.pop((model, number), None)
            upload.unlink(missing_ok=True)
            remove_path(staging)

    async def _remove_objects(self, model: str, number: int, kept: str | None) -> None:
        """Remove a version's objects from the store and the cache (best effort when the store is down)."""
        try:
            await in_store_thread(self.store.delete_prefix, version_prefix(model, number))
            if kept:
                await in_store_thread(self.store.delete, kept)
        except FlashMLError as exc:
            log.warning("could not remove %s v%d from storage: %s", model, number, exc.message)
        await asyncio.to_thread(self.cache.evict, model, number)

    async def _fail(self, vid: int, steps: list, errors: list[dict[str, Any]]) -> None:
        row = await db.get_version_by_id(self.engine, vid)
        announce = self._announce(changes.VERSION, row["model"], row["version"]) if row is not None else None
        await db.update_version(self.engine, vid, state="failed", errors=errors, report={"steps": steps},
                                announce=announce)

    # ---- reading ----

    def serving(self, model: str) -> Serving | None:
        """What answers ``model``'s calls without a version (None: nothing is ready). Inference picks from it and
        every page, list and report that says which version serves reads it, so they cannot disagree."""
        return self.aliases.serving(model, self.latest_ready.get(model))

    def serving_info(self, model: str) -> ServingInfo | None:
        serving = self.serving(model)
        return serving.info() if serving is not None else None

    async def list_models(self) -> list[ModelSummary]:
        versions = await db.list_versions(self.engine)
        out = []
        for m in await db.list_models(self.engine):
            mine = [v for v in versions if v["model_id"] == m["id"]]
            out.append(ModelSummary(
                name=m["name"], created_by=m["created_by"], created_at=m["created_at"],
                latest_ready=self.latest_ready.get(m["name"]), serving=self.serving_info(m["name"]),
                versions=[VersionSummary(version=v["version"], state=v["state"],
                                         warnings=len((v.get("report") or {}).get("warnings") or []))
                          for v in mine]))
        return out

    async def get_model(self, model: str) -> ModelRecord:
        row = await db.get_model(self.engine, model)
        if row is None:
            raise ModelNotFoundError(model)
        records = []
        for v in await db.list_versions(self.engine, model):
            number = v["version"]
            record = version_record(v, self.pool.get(model, number), self.progress.get((model, number)))
            record.aliases = self.aliases.pointing_at(model, number)
            record.unloaded_for_memory = (model, number) in self.memory.unloaded
            records.append(record)
        return ModelRecord(name=row["name"], created_by=row["created_by"], created_at=row["created_at"],
                           latest_ready=self.latest_ready.get(model), serving=self.serving_info(model),
                           versions=records,
                           aliases=await self.aliases.list_aliases(model),
                           response_cache=self.response_caches.view(model), memory=self.memory.view())

    async def _version_row(self, model: str, number: int) -> dict[str, Any]:
        row = await db.get_version(self.engine, model, number)
        if row is None:
            if await db.get_model(self.engine, model) is None:
                raise ModelNotFoundError(model)
            raise VersionNotFoundError(model, number)
        return row

    async def get_version(self, model: str, number: int) -> VersionRecord:
        return version_record(await self._version_row(model, number), self.pool.get(model, number),
                              self.progress.get((model, number)))

    # ---- lifecycle ----

    def _in_use(self, model: str, number: int) -> bool:
        loaded = self.pool.get(model, number)
        if loaded is None:
            return False
        return loaded.in_flight > 0 or time.time() - loaded.last_used < self.settings.in_use_window_s

    def _refresh_latest(self, model: str, ready: list[int]) -> None:
        if ready:
            self.latest_ready[model] = max(ready)
        else:
            self.latest_ready.pop(model, None)

    async def _ready_numbers(self, model: str) -> list[int]:
        return [v["version"] for v in await db.list_versions(self.engine, model, state="ready")]

    async def delete_version(self, model: str, number: int, *, force: bool, actor: str) -> None:
        async with self.aliases.lock:  # no alias may be pointed at it meanwhile
            await self._delete_version(model, number, force=force, actor=actor)

    async def _delete_version(self, model: str, number: int, *, force: bool, actor: str) -> None:
        row = await self._version_row(model, number)
        self.aliases.refuse_if_aliased(model, number, "delete")
        if row["state"] == "validating":
            raise ConflictError(f"{model} v{number} is still being validated; delete it when it is done.",
                                code="version_validating")
        if not force and self._in_use(model, number):
            raise ConflictError(f"{model} v{number} is in use (it answered requests in the last "
                                f"{int(self.settings.in_use_window_s)} s); archive it first or delete with "
                                "force=true.", code="version_in_use")
        if row["state"] != "failed":  # a failed version has no objects: it deletes even while the store is down
            await self.check_store("this deletion")
        self.waiting_for_store.discard((model, number))
        self.memory.forget(model, number, pinned=True)
        await self.pool.unload(model, number)
        await self._delete_objects(row)
        await db.delete_version(self.engine, row["id"], announce=self._announce(changes.VERSION_DELETED, model, number))
        self.configs_in_use.pop((model, number), None)
        self.response_caches.clear(model)
        self._refresh_latest(model, await self._ready_numbers(model))
        for forget in self.on_delete:
            await forget(model, number)
        await audit.record(self.engine, actor, "version.delete", f"{model}/v{number}", {"force": force})

    async def delete_model(self, model: str, *, force: bool, actor: str) -> None:
        async with self.aliases.lock:  # no alias may be set on it meanwhile
            await self._delete_model(model, force=force, actor=actor)

    async def _delete_model(self, model: str, *, force: bool, actor: str) -> None:
        info = await self.get_model(model)
        numbers = [v.version for v in info.versions]
        if any(v.state == "validating" for v in info.versions):
            raise ConflictError(f"A version of {model} is still being validated; delete it when it is done.",
                                code="version_validating")
        busy = [n for n in numbers if self._in_use(model, n)]
        if busy and not force:
            raise ConflictError(f"{model} is in use (version {busy[0]} answered requests recently); delete with "
                                "force=true.", code="model_in_use")
        if any(v.state != "failed" for v in info.versions):
            await self.check_store("this deletion")
        for row in await db.list_versions(self.engine, model):
            self.waiting_for_store.discard((model, row["version"]))
            await self.pool.unload(model, row["version"])
            await self._delete_objects(row)
        # its aliases go with it (ON DELETE CASCADE)
        await db.delete_model(self.engine, model, announce=self._announce(changes.MODEL_DELETED, model))
        await self._forget_model(model)
        await audit.record(self.engine, actor, "model.delete", model, {"force": force, "versions": numbers})

    async def _forget_model(self, model: str) -> None:
        """Drop what this node holds about a deleted model: its latest version, aliases, response cache, memory
        pins, and what the on_delete listeners keep (prediction log, drift)."""
        self.latest_ready.pop(model, None)
        self.aliases.forget_model(model)
        self.response_caches.forget(model)
        self.memory.forget(model, pinned=True)
        for forget in self.on_delete:
            await forget(model, None)

    async def _delete_objects(self, row: dict[str, Any]) -> None:
        """A version's objects: its canonical folder and its kept bundle; a store error stops the deletion."""
        model, number = row["model"], row["version"]
        if row["state"] == "failed":  # never published (what a failure left is removed as strays at start-up)
            return
        await in_store_thread(self.store.delete_prefix, version_prefix(model, number))
        kept = (row.get("report") or {}).get("bundle_key")
        if kept:
            await in_store_thread(self.store.delete, kept)
        await asyncio.to_thread(self.cache.evict, model, number)

    async def set_archived(self, model: str, number: int, archived: bool, *, actor: str) -> VersionRecord:
        async with self.aliases.lock:  # no alias may be pointed at it meanwhile
            return await self._set_archived(model, number, archived, actor=actor)

    async def _set_archived(self, model: str, number: int, archived: bool, *, actor: str) -> VersionRecord:
        row = await self._version_row(model, number)
        want, need = ("archived", "ready") if archived else ("ready", "archived")
        if row["state"] == want:
            return await self.get_version(model, number)
        if archived:
            self.aliases.refuse_if_aliased(model, number, "archive")
        if row["state"] != need:
            raise ConflictError(f"{model} v{number} is {row['state']}; only a {need} version can be "
                                f"{'archived' if archived else 'restored'}.", code="bad_state")
        if archived:
            self.memory.forget(model, number)
            await self.pool.unload(model, number)
        else:
            await self._load_row(row)
        await db.update_version(self.engine, row["id"], state=want,
                                announce=self._announce(changes.VERSION, model, number))
        self._refresh_latest(model, await self._ready_numbers(model))
        await audit.record(self.engine, actor, "version.archive" if archived else "version.restore",
                           f"{model}/v{number}")
        return await self.get_version(model, number)

    async def _load_row(self, row: dict[str, Any], config: dict[str, Any] | None = None) -> LoadedModel:
        model_file = (row.get("manifest") or {}).get("model", "model.onnx")
        checksums = (row.get("report") or {}).get("checksums")
        folder = await in_store_thread(self.cache.ensure, row["model"], row["version"], checksums)
        path = folder / model_file
        config = config if config is not None else (row.get("config") or {})
        device, batching = serving.split(config)
        loaded = await self.pool.load(row["model"], row["version"], path, Signature.from_dict(row["signature"]),
                                      batching, device)
        self.configs_in_use[(row["model"], row["version"])] = config
        if loaded.on_gpu:
            await loaded.warm_up()  # the budget counts the version at its peak batch, not its weights alone
        await self.memory.after_load(loaded)
        return loaded

    async def _load_ready(self, model: str, number: int) -> LoadedModel:
        """Load a ready version again (it was unloaded to stay within the memory budget)."""
        row = await self._version_row(model, number)
        if row["state"] != "ready":
            self.memory.forget(model, number)
            raise ConflictError(f"{model} v{number} is {row['state']}, not ready to serve.", code="version_not_ready")
        return await self._load_row(row)

    async def set_pinned(self, model: str, number: int, change: PinChange, *, actor: str) -> VersionRecord:
        """PATCH .../versions/{v} {"pinned": true}: a pinned version is never unloaded to make room."""
        pinned = change.pinned
        async with self.aliases.lock:  # not archived or deleted meanwhile
            row = await self._version_row(model, number)
            if pinned and row["state"] != "ready":
                raise ConflictError(f"{model} v{number} is {row['state']}; only a ready version can be pinned.",
                                    code="bad_state")
            await db.update_version(self.engine, row["id"], pinned=pinned,
                                    announce=self._announce(changes.VERSION, model, number))
            if pinned:
                self.memory.pinned.add((model, number))
                if self.pool.get(model, number) is None:  # pinned means loaded: load it now
                    await self._load_row(row)
            else:
                self.memory.pinned.discard((model, number))
            await audit.record(self.engine, actor, "version.pin" if pinned else "version.unpin", f"{model}/v{number}")
        return await self.get_version(model, number)

    async def prepare_versions(self, model: str, numbers: list[int]) -> None:
        """Load (when not loaded) and warm these ready versions: an alias moves traffic to them only after."""
        for number in numbers:
            loaded = self.pool.get(model, number)
            if loaded is None:
                loaded = await self._load_row(await self._version_row(model, number))
                self.waiting_for_store.discard((model, number))
            await loaded.warm_up()

    # ---- serving configuration ----

    async def get_config(self, model: str, number: int) -> ConfigView:
        row = await self._version_row(model, number)
        return config_view(row, self.pool.get(model, number))

    async def patch_config(self, model: str, number: int, change: ConfigChange, *, actor: str) -> ConfigView:
        """Change batching or instances of a version live: no restart, no lost request."""
        changed = change.changes()
        row = await self._version_row(model, number)
        if row["state"] not in ("ready", "archived"):
            raise ConflictError(f"{model} v{number} is {row['state']}; only published versions have a config.",
                                code="bad_state")
        current = row.get("config") or serving.join(None, serving.split({})[1])
        config, reload = serving.patched(current, changed, Signature.from_dict(row["signature"]))
        await self._follow_config(row, config, reload)
        await db.update_version(self.engine, row["id"], config=config,
                                announce=self._announce(changes.VERSION, model, number))
        self.configs_in_use[(model, number)] = config
        await audit.record(self.engine, actor, "version.config", f"{model}/v{number}", changed)
        row["config"] = config
        return config_view(row, self.pool.get(model, number))

    async def _follow_config(self, row: dict[str, Any], config: dict[str, Any], reload: bool) -> None:
        """Make the loaded version (if loaded) serve ``config``: new sessions where ``reload``, else in place."""
        loaded = self.pool.get(row["model"], row["version"])
        if loaded is None:
            return
        if reload:
            await self._load_row(row, config)
            return
        loaded.reconfigure(serving.split(config)[1])
        self.configs_in_use[(row["model"], row["version"])] = config
        if loaded.on_gpu and loaded.warm_up_rows() > loaded.peak_batch:  # a larger batch: a larger peak
            loaded.warmed = False
            await loaded.warm_up()
            await self.memory.after_load(loaded)

    # ---- start-up ----

    async def recover_and_load(self) -> None:
        """Finish what a crash interrupted, then load every ready version."""
        await asyncio.to_thread(self.scratch.clear)
        await self.fail_interrupted(at_start=True)
        await self.remove_strays()
        await self.aliases.load()
        await self.response_caches.load()
        ready = await db.list_versions(self.engine, state="ready")
        self.memory.pinned = {(r["model"], r["version"]) for r in ready if r.get("pinned")}
        for row in sorted(ready, key=lambda r: not r.get("pinned")):  # pinned first: they stay within the budget
            try:
                await self._load_row(row)
            except StorageUnavailableError:  # its files are not cached and the store is down: retried later
                self.waiting_for_store.add((row["model"], row["version"]))
                log.warning("%s v%d waits for the storage to come back before it can load", row["model"],
                            row["version"])
            except Exception:  # noqa: BLE001 - one broken version must not stop the server
                log.exception("could not load %s v%d", row["model"], row["version"])
            self.latest_ready[row["model"]] = max(self.latest_ready.get(row["model"], 0), row["version"])

    async def fail_interrupted(self, *, at_start: bool = False) -> int:
        """Mark failed the validations no node is running any more: at start, this node's own (a crash cut them
        short) and those of a node that no longer beats its heartbeat; later (the leader, every few rounds), those
        of nodes that stopped beating. How many."""
        rows = await db.list_versions(self.engine, state="validating")
        owners: set[str] = {o for r in rows if (o := (r.get("report") or {}).get(db.VALIDATING_ON))} - {self.node}
        alive = await self.beating(owners) if owners else set()
        failed = 0
        for row in rows:
            owner = (row.get("report") or {}).get(db.VALIDATING_ON)
            if owner in alive or (not at_start and owner in (None, self.node)):
                continue  # running on a node that beats (or here, where only a start-up knows it is cut short)
            await self._remove_objects(row["model"], row["version"], None)
            await self._fail(row["id"], [], [{"code": "interrupted", "error": "The server stopped while this "
                                              "version was being validated. Upload it again."}])
            failed += 1
        return failed

    async def beating(self, names: set[str]) -> set[str]:
        """Those of the nodes ``names`` whose heartbeat moves: seen lately, and seen again after two intervals (a
        node killed a moment ago is still listed as live, but its heartbeat stands still)."""
        interval = self.settings.sync_interval_s
        before = {n["node_id"]: n["seen_at"] for n in await nodes_db.live(self.engine, time.time(), 3 * interval)
                  if n["node_id"] in names}
        if not before:
            return set()
        await asyncio.sleep(2.5 * interval)
        after = await nodes_db.live(self.engine, time.time(), 3 * interval)
        return {n["node_id"] for n in after if n["node_id"] in before and n["seen_at"] > before[n["node_id"]]}

    async def other_live_nodes(self) -> set[str]:
        """The other nodes sharing the database that beat their heartbeat lately (none on a single node)."""
        live = await nodes_db.live(self.engine, time.time(), 3 * self.settings.sync_interval_s)
        return {n["node_id"] for n in live} - {self.node}

    async def evict_unused_cache(self) -> int:
        """Drop versions from the node-local cache that are deleted, archived or failed (housekeeping)."""
        serving = {(m.model, m.version) for m in self.pool.loaded()}
        removed = 0
        for model, version in await asyncio.to_thread(self.cache.cached):
            if (model, version) in serving or (model, version) in self.waiting_for_store:
                continue
            row = await db.get_version(self.engine, model, version)
            if row is None or row["state"] in ("archived", "failed"):  # ready ones may be loading right now
                await asyncio.to_thread(self.cache.evict, model, version)
                removed += 1
        return removed

    async def load_waiting(self) -> None:
        """Load the versions that could not load while the store was down (called by housekeeping)."""
        for model, number in sorted(self.waiting_for_store):
            if (model, number) not in self.waiting_for_store:  # deleted or archived meanwhile
                continue
            row = await db.get_version(self.engine, model, number)
            if row is None or row["state"] != "ready" or self.pool.get(model, number) is not None:
                self.waiting_for_store.discard((model, number))
                continue
            try:
                await self._load_row(row)
            except StorageUnavailableError:
                return  # still down: try again next round
            except Exception:  # noqa: BLE001 - a broken version must not stop the others
                log.exception("could not load %s v%d", model, number)
            self.waiting_for_store.discard((model, number))
            log.info("loaded %s v%d now that the storage is back", model, number)

    async def remove_strays(self) -> None:
        """Remove version folders (store and cache) and kept bundles that no published version owns."""
        everything = await db.list_versions(self.engine)
        rows = [v for v in everything if v["state"] in ("ready", "archived")]
        # Another node sharing the store may be publishing a version right now: its files and bundle stay.
        validating = {(v["model"], v["version"]) for v in everything if v["state"] == "validating"}
        known = {(v["model"], v["version"]) for v in rows} | validating
        bundles = {(v.get("report") or {}).get("bundle_key") for v in rows}
        for model, number in await asyncio.to_thread(self.cache.cached):
            if (model, number) not in known:
                await asyncio.to_thread(self.cache.evict, model, number)
        try:
            keys = await in_store_thread(self.store.list_prefix, "models/")
            strays = {(k.split("/")[1], k.split("/")[2]) for k in keys if len(k.split("/")) > 3}
            for model, vdir in strays:
                if vdir[1:].isdigit() and (model, int(vdir[1:])) not in known:
                    await in_store_thread(self.store.delete_prefix, f"models/{model}/{vdir}/")
            for key in await in_store_thread(self.store.list_prefix, "uploads/"):
                if key not in bundles and not any(key.rsplit("/", 1)[-1].startswith(f"{m}-v{n}.")
                                                  for m, n in validating):
                    await in_store_thread(self.store.delete, key)
        except FlashMLError as exc:
            log.warning("storage clean-up skipped: %s", exc.message)

    # ---- changes another node made (flashml.cluster reads them from the change feed) ----
    # Each re-reads the database, so applying one twice, or late, leaves the same state.

    async def apply_version(self, model: str, number: int) -> None:
        """Follow a version's row: load it when it became ready (from the store), unload it when archived or
        failed, reload or reconfigure it when its serving config or signature changed, pin or unpin it."""
        async with self.aliases.lock:  # as a local archive or delete does: aliases see one state at a time
            row = await db.get_version(self.engine, model, number)
            if row is None:
                await self._forget_version(model, number)
                return
            key = (model, number)
            loaded = self.pool.get(model, number)
            if row["state"] == "ready":
                if row.get("pinned"):
                    self.memory.pinned.add(key)
                else:
                    self.memory.pinned.discard(key)
                if loaded is None:
                    if key not in self.memory.unloaded or row.get("pinned"):  # unloaded for memory: on demand
                        await self._load_or_wait(row)
                else:
                    await self._follow_row(row, loaded)
            else:  # archived, failed (or validating again): nothing of it serves here
                self.memory.forget(model, number, pinned=True)
                self.waiting_for_store.discard(key)
                self.configs_in_use.pop(key, None)
                if loaded is not None:
                    await self.pool.unload(model, number)
            self._refresh_latest(model, await self._ready_numbers(model))

    async def _load_or_wait(self, row: dict[str, Any]) -> None:
        model, number = row["model"], row["version"]
        try:
            await self._load_row(row)
            self.waiting_for_store.discard((model, number))
        except StorageUnavailableError:  # housekeeping's load_waiting tries again
            self.waiting_for_store.add((model, number))
            log.warning("%s v%d waits for the storage to come back before it can load", model, number)

    async def _follow_row(self, row: dict[str, Any], loaded: LoadedModel) -> None:
        """A loaded version whose row changed: new sessions when a field that needs them (or the signature, which
        a first request measured) changed; the batcher reconfigured in place when only batching did."""
        config = row.get("config") or {}
        in_use = self.configs_in_use.get((row["model"], row["version"]))
        signature = Signature.from_dict(row["signature"])
        if in_use is None or signature.to_dict() != loaded.signature.to_dict() or any(
                config.get(f) != in_use.get(f) for f in serving.RELOAD_FIELDS):
            await self._load_row(row)
        elif config != in_use:
            await self._follow_config(row, config, reload=False)

    async def _forget_version(self, model: str, number: int) -> None:
        """A version deleted on another node: unload it, drop its cached files and what layers above keep."""
        self.waiting_for_store.discard((model, number))
        self.memory.forget(model, number, pinned=True)
        self.configs_in_use.pop((model, number), None)
        await self.pool.unload(model, number)
        await asyncio.to_thread(self.cache.evict, model, number)
        self.response_caches.clear(model)
        self._refresh_latest(model, await self._ready_numbers(model))
        for forget in self.on_delete:
            await forget(model, number)

    async def apply_version_deleted(self, model: str, number: int) -> None:
        """A version deleted on another node (its number may already be taken again: then follow the new row)."""
        if await db.get_version(self.engine, model, number) is not None:
            await self.apply_version(model, number)
            return
        async with self.aliases.lock:
            await self._forget_version(model, number)

    async def apply_model_deleted(self, model: str) -> None:
        """A model deleted on another node: everything of it goes here too (unless it was made again since: then
        its new versions and aliases are followed)."""
        async with self.aliases.lock:
            for loaded in [m for m in self.pool.loaded() if m.model == model]:
                await self.pool.unload(model, loaded.version)
            for cached_model, number in await asyncio.to_thread(self.cache.cached):
                if cached_model == model:
                    await asyncio.to_thread(self.cache.evict, model, number)
            self.waiting_for_store = {k for k in self.waiting_for_store if k[0] != model}
            self.configs_in_use = {k: v for k, v in self.configs_in_use.items() if k[0] != model}
            await self._forget_model(model)
        if await db.get_model(self.engine, model) is not None:  # made again meanwhile
            for row in await db.list_versions(self.engine, model):
                await self.apply_version(model, row["version"])
            await self.aliases.apply_model(model)
            await self.response_caches.apply(model)

    def learn_from_request(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> None:
        """A version no made-up input ran just answered a real request: in the background, measure it at that
        request's shapes (rows follow the batch? auto-tune there) and record them, once per version."""
        key = (loaded.model, loaded.version)
        if loaded.signature.sample_sizes is not None or key in self._learned:
            return
        self._learned.add(key)
        task = asyncio.get_running_loop().create_task(self._learn(loaded, inputs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> None:
        row = await self._version_row(loaded.model, loaded.version)
        report = dict(row.get("report") or {})
        hints = BatchingHints.from_table((row.get("manifest") or {}).get("batching") or {})  # checked at upload
        if not report.get("guesses_failed") or row["state"] != "ready" or report.get("learned_from_request_at"):
            return
        signature = loaded.signature
        sizes = shape_sizes(signature, inputs)
        # The sandbox runs made-up inputs at these shapes first, at every batch size auto-tune may then run here.
        batch_sizes, budget_ms = serving.batches_to_prove(hints, self.settings)
        try:
            probe = await asyncio.to_thread(
                run_probe, loaded.model_path, device=loaded.device, timeout_s=self.settings.validation_timeout_s,
                memory_bytes=self.settings.validation_memory_bytes, sizes=sizes, batch_sizes=batch_sizes,
                budget_ms=budget_ms)
        except ValidationFailedError as exc:  # one row at these shapes broke a limit: nothing more runs here
            report.update(warnings=[*(report.get("warnings") or []), _learning_refused(exc)],
                          learned_from_request_at=time.time())
            await db.update_version(self.engine, row["id"], report=report)
            log.warning("%s v%d at the shapes of its first request (%s): %s", loaded.model, loaded.version, sizes,
                        exc.code)
            return
        unbatched = probe.signature.unbatched and not probe.warmup_error
        loaded.signature = Signature(signature.inputs, signature.outputs, sizes, unbatched)
        config, card = row.get("config") or {}, None
        warnings = [w for w in report.get("warnings") or [] if not w.startswith("FlashML could not run this model")]
        proof = probe.batch_proof
        largest = proof["largest"] if proof else 0
        if probe.warmup_error:
            warnings.append(f"Auto-tune could not measure this model at the shapes of its first request "
                            f"({plain_runtime_error(probe.warmup_error)}); batching stays off until you set it "
                            "(flashml models config).")
        elif capped := batch_proof_warning(proof, loaded.signature, self.settings):
            warnings.append(capped)
        tune = False
        if not unbatched and batchable(loaded.signature):  # what publication starts from, had a guess run it
            start, tune = serving.initial_config(hints, loaded.signature, self.settings)
            config = {**config, **{k: start[k] for k in ("max_batch_size", "preferred_batch_sizes", "batch_buckets")}}
        config = serving.within_proof(config, largest)
        if tune and largest:
            try:
                config, card = await serving.autotune(loaded, config, hints, self.settings, self.pool,
                                                      largest)
            except ModelRuntimeError as exc:
                warnings.append(f"Auto-tune could not measure this model at the shapes of its first request "
                                f"({exc}); batching stays off until you set it (flashml models config).")
        device, batching = serving.split(config)
        if (batching.instance_count != loaded.config.instance_count or batching.batch_buckets
                != loaded.config.batch_buckets or loaded.on_gpu):
            loaded = await self.pool.load(loaded.model, loaded.version, loaded.model_path, loaded.signature,
                                          batching, device)
        else:
            loaded.reconfigure(batching)
        await self.memory.after_load(loaded)
        if proof is not None:
            report["batch_proof"] = proof
        report.update(warnings=warnings, learned_from_request_at=time.time())
        await db.update_version(self.engine, row["id"], signature=loaded.signature.to_dict(), config=config,
                                perf=card if card is not None else row.get("perf"), report=report,
                                announce=self._announce(changes.VERSION, loaded.model, loaded.version))  # others reload
        self.configs_in_use[(loaded.model, loaded.version)] = config
        log.info("%s v%d measured at the shapes of its first request: %s", loaded.model, loaded.version, sizes)

    async def wait_idle(self) -> None:
        """Let validations in progress finish (used at shutdown and in tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _as_dict(obj: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # an instance, not a dataclass itself
        return {k: _as_dict(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_as_dict(v) for v in obj]
    return obj


def _details(exc: FlashMLError) -> dict[str, Any]:
    return {"details": exc.details} if exc.details else {}
