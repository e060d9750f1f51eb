"""All services of one running FlashML, built once from the settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.engine import open_database
from flashml.jobs.datasets import DatasetService
from flashml.jobs.housekeeping import Housekeeping
from flashml.jobs.runner import JobRunner
from flashml.jobs.scheduler import Scheduler
from flashml.jobs.service import JobService
from flashml.metrics import RequestMetrics
from flashml.runtime.devices import resolve_device
from flashml.runtime.memory_budget import parse_budget
from flashml.runtime.pool import ModelPool
from flashml.runtime.sessions import SessionOptions
from flashml.services.canary_guard import CanaryGuard
from flashml.services.direct_uploads import DirectUploadService
from flashml.services.inference import InferenceService
from flashml.services.keys import KeyService
from flashml.services.registry import RegistryService
from flashml.services.sessions import SessionService
from flashml.services.shadow import ShadowService
from flashml.services.users import UserService
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore, StorageUnavailableError
from flashml.storage.cache import ModelCache
from flashml.storage.factory import open_store
from flashml.storage.scratch import ScratchSpace
from flashml.storage.threads import in_store_thread
from flashml.tasks.service import PredictService

log = logging.getLogger("flashml")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    keys: KeyService
    users: UserService
    sessions: SessionService
    registry: RegistryService | None = None
    inference: InferenceService | None = None
    predict: PredictService | None = None
    uploads: DirectUploadService | None = None
    pool: ModelPool | None = None
    datasets: DatasetService | None = None
    jobs: JobService | None = None
    scheduler: Scheduler | None = None
    housekeeping: Housekeeping | None = None
    metrics: RequestMetrics = field(default_factory=RequestMetrics)  # inference requests, last hour
    guard: CanaryGuard | None = None  # rolls back guarded canaries that cross their thresholds
    shadow: ShadowService | None = None  # aliases' shadow traffic and its comparisons

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.housekeeping is not None:
            await asyncio.wait_for(self.housekeeping.wait_idle(), 30)
        if self.jobs is not None:
            await self.jobs.runner.stop()
        if self.guard is not None:
            await self.guard.stop()
        await self.keys.stop()
        if self.uploads is not None:
            await self.uploads.stop()
        if self.shadow is not None:
            await self.shadow.wait_idle()
        if self.registry is not None:
            await self.registry.wait_idle()
        if self.pool is not None:
            await self.pool.close()
        await self.engine.dispose()


async def open_metadata(settings: Settings) -> Services:
    """Database-only services: what the CLI needs for users and keys."""
    engine = await open_database(settings.db_path)
    return Services(settings, engine, KeyService(engine), UserService(engine), SessionService(engine))


async def open_services(settings: Settings) -> Services:
    """Everything the server needs, with every ready version loaded."""
    services = await open_metadata(settings)
    device = resolve_device(settings.device)
    options = SessionOptions(settings.intra_op_threads, settings.tensorrt, settings.tensorrt_fp16,
                             str(settings.data_dir / "cache" / "tensorrt"), parse_budget(settings.memory_budget))
    if settings.tensorrt:
        Path(options.trt_cache_dir).mkdir(parents=True, exist_ok=True)
    services.pool = ModelPool(device, options, inline_run_s=settings.inline_run_us / 1e6)
    store = open_store(settings)
    try:
        await in_store_thread(store.prepare)
    except StorageUnavailableError as exc:  # serve what the cache holds; uploads answer 503 until it is back
        log.warning("%s", exc.message)
    cache = ModelCache(store, settings.data_dir / "cache" / "models")
    services.registry = RegistryService(services.engine, store, ScratchSpace(settings.data_dir), cache,
                                        services.pool, settings)
    services.shadow = ShadowService(services.pool, settings.shadow_max_concurrency)
    services.inference = InferenceService(services.registry, limiter=services.keys.admit,
                                           metrics=services.metrics, shadow=services.shadow)
    services.predict = PredictService(services.inference, settings)
    await services.registry.recover_and_load()
    services.uploads = DirectUploadService(services.engine, services.registry, settings)
    await services.uploads.start()
    await services.keys.start()
    await _start_jobs(services, store)
    services.guard = CanaryGuard(services.registry.aliases, services.metrics, settings.canary_check_interval_s)
    services.guard.start()
    return services


async def _start_jobs(services: Services, store: ArtifactStore) -> None:
    """Datasets, batch jobs (resuming what a stop left), schedules and housekeeping, on one APScheduler."""
    settings = services.settings
    services.datasets = DatasetService(services.engine, store, services.registry.scratch, settings)
    services.scheduler = Scheduler()
    runner = JobRunner(services.engine, store, services.inference, settings, services.predict)
    services.jobs = JobService(services.engine, services.inference, runner, services.scheduler, settings)
    services.housekeeping = Housekeeping(services, services.scheduler)
    await runner.start()
    await services.jobs.load_schedules()
    services.housekeeping.plan(settings.housekeeping_interval_s)
    services.scheduler.start()
