"""The composition root: every service of one running FlashML, built once, in one place, at start-up.

``open_services`` builds the server's graph; ``open_admin`` the database-only part the CLI's in-process
commands use (users, keys, sign-ins). Nothing else constructs a service: controllers receive the ones
they use through Litestar's dependency injection (``flashml.web.deps``), the CLI through ``open_admin``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.audit import AuditService
from flashml.auth.keys import KeyService
from flashml.auth.sign_ins import SignInService
from flashml.auth.users import UserService
from flashml.cluster.follow import follow_registry
from flashml.cluster.node import ClusterNode
from flashml.db import changes
from flashml.db.engine import open_settings_database
from flashml.inference.canary_guard import CanaryGuard
from flashml.inference.metrics_report import MetricsReportService
from flashml.inference.predict import PredictService
from flashml.inference.service import InferenceService
from flashml.inference.shadow import ShadowService
from flashml.jobs.datasets import DatasetService
from flashml.jobs.drift_reference import DatasetReference
from flashml.jobs.housekeeping import Housekeeping
from flashml.jobs.job_runner import JobRunner
from flashml.jobs.scheduler import Scheduler
from flashml.jobs.service import JobService
from flashml.monitoring.drift_metrics import DriftCollector
from flashml.monitoring.drift_service import DriftService
from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_metrics import PredictionLogCollector
from flashml.monitoring.prediction_log_settings import PredictionLogSettings
from flashml.registry.aliases import AliasService
from flashml.registry.direct_uploads import DirectUploadService
from flashml.registry.response_cache import ResponseCacheService
from flashml.registry.service import RegistryService
from flashml.runtime.devices import resolve_device
from flashml.runtime.memory_budget import parse_budget
from flashml.runtime.pool import ModelPool
from flashml.runtime.sessions import SessionOptions
from flashml.settings import Settings
from flashml.storage.base import ArtifactStore, StorageUnavailableError
from flashml.storage.cache import ModelCache
from flashml.storage.factory import open_store
from flashml.storage.scratch import ScratchSpace
from flashml.storage.threads import in_store_thread
from flashml.telemetry import RequestMetrics
from flashml.telemetry.gpu_collector import GpuCollector
from flashml.telemetry.prometheus import new_registry
from flashml.telemetry.serving_collector import ServingCollector, ServingSources

log = logging.getLogger("flashml")


@dataclass(frozen=True)
class AdminServices:
    """The database-only services: what the CLI's in-process commands need (users, keys, sign-ins)."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyService
    users: UserService
    sign_ins: SignInService

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass(frozen=True)
class Services:
    """Everything the server runs, each built once by ``open_services``."""

    settings: Settings
    engine: AsyncEngine
    store: ArtifactStore
    pool: ModelPool  # the loaded versions and their ONNX Runtime sessions
    keys: KeyService
    users: UserService
    sign_ins: SignInService  # console sign-ins behind a cookie
    audit: AuditService  # reads the audit log for the API and the console, one visibility rule
    registry: RegistryService
    aliases: AliasService
    response_caches: ResponseCacheService
    uploads: DirectUploadService  # presigned direct uploads to the store
    recorder: RequestMetrics  # inference requests, last hour
    reports: MetricsReportService
    shadow: ShadowService  # aliases' shadow traffic and its comparisons
    inference: InferenceService
    predict: PredictService  # the task endpoints
    guard: CanaryGuard  # rolls back guarded canaries that cross their thresholds
    datasets: DatasetService
    jobs: JobService
    scheduler: Scheduler
    housekeeping: Housekeeping
    predictions: PredictionLog  # a sampled share of each model's answers, on disk (off until a model turns it on)
    prediction_log_settings: PredictionLogSettings  # each model's prediction log settings, stored and audited
    drift: DriftService  # drift scores of monitored versions from their logged predictions, in the background
    # GET /metrics: this app's Prometheus registry (never prometheus_client's global one); other parts add their
    # collectors to it in open_services with metrics_registry.register(...).
    metrics_registry: CollectorRegistry
    node: ClusterNode  # this node among those sharing the database: the change feed, heartbeat, leader lease

    async def close(self) -> None:
        """Stop in the reverse order of start: background work first, the database last."""
        await self.node.stop()  # no change from another node is applied while the rest stops
        self.scheduler.shutdown()
        await asyncio.wait_for(self.housekeeping.wait_idle(), 30)
        await self.jobs.runner.stop()
        await self.guard.stop()
        await self.keys.stop()
        await self.uploads.stop()
        await self.shadow.wait_idle()
        await self.drift.stop()  # it reads the prediction log
        await self.predictions.close()  # writes what is still queued
        await self.registry.wait_idle()
        await self.pool.close()
        await self.engine.dispose()


async def open_admin(settings: Settings, *, node: str | None = None) -> AdminServices:
    """The database-only services, for the CLI's users and keys commands. ``node`` names the changes they write
    to the shared feed: the server's node name, else the CLI's own (so the server on this host applies them)."""
    engine = await open_settings_database(settings)
    node = node or f"{settings.node_name}/cli"
    sign_ins = SignInService(engine, node=node)  # one brake and session cache, shared with the users service
    keys = KeyService(engine, node=node, flush_every_s=settings.sync_interval_s)
    return AdminServices(settings, engine, keys, UserService(engine, sign_ins), sign_ins)


def _open_pool(settings: Settings) -> ModelPool:
    trt_cache_dir = settings.data_dir / "cache" / "tensorrt"
    options = SessionOptions(settings.intra_op_threads, settings.tensorrt, settings.tensorrt_fp16,
                             str(trt_cache_dir), parse_budget(settings.memory_budget))
    if settings.tensorrt:
        trt_cache_dir.mkdir(parents=True, exist_ok=True)
    return ModelPool(resolve_device(settings.device), options, inline_run_s=settings.inline_run_us / 1e6)


async def _prepare_store(settings: Settings) -> ArtifactStore:
    store = open_store(settings)
    try:
        await in_store_thread(store.prepare)
    except StorageUnavailableError as exc:  # serve what the cache holds; uploads answer 503 until it is back
        log.warning("%s", exc.message)
    return store


def _metrics_registry(pool: ModelPool, recorder: RequestMetrics, registry: RegistryService, keys: KeyService,
                      runner: JobRunner) -> CollectorRegistry:
    """Process, serving and GPU numbers, each read from where it is already counted when Prometheus scrapes."""
    metrics = new_registry()
    metrics.register(ServingCollector(ServingSources(
        loaded=pool.loaded, requests=recorder, caches=lambda: registry.response_caches.caches,
        key_refusals=lambda: keys.limiter.refusals, uploads=lambda: registry.upload_outcomes,
        rows_scored=lambda: runner.rows_scored)))
    metrics.register(GpuCollector())
    return metrics


async def open_services(settings: Settings) -> Services:
    """Build and start everything the server needs, with every ready version loaded."""
    admin = await open_admin(settings, node=settings.node_name)
    engine = admin.engine
    await admin.sign_ins.start()  # the sign-in forms' key, shared by the nodes
    pool = _open_pool(settings)
    store = await _prepare_store(settings)
    scratch = ScratchSpace(settings.data_dir)
    node = ClusterNode(engine, settings)
    await node.begin()  # before anything loads: a change another node makes meanwhile is read, not missed
    registry = RegistryService(engine, store, scratch, ModelCache(store, settings.data_dir / "cache" / "models"),
                               pool, settings)
    recorder = RequestMetrics()
    shadow = ShadowService(pool, settings.shadow_max_concurrency)
    predictions = PredictionLog(settings.data_dir / "predictions", settings.prediction_log_retention_s,
                                settings.prediction_log_max_bytes)
    prediction_log_settings = PredictionLogSettings(engine, predictions, node=settings.node_name)
    await prediction_log_settings.load()
    await predictions.start()
    registry.on_delete.append(predictions.forget)
    inference = InferenceService(registry, limiter=admin.keys.admit, metrics=recorder, shadow=shadow,
                                 predictions=predictions)
    predict = PredictService(inference, settings)
    await registry.recover_and_load()
    uploads = DirectUploadService(engine, registry, settings)
    await uploads.start()
    await admin.keys.start()
    # Datasets, batch jobs (resuming what a stop left), schedules and housekeeping, on one APScheduler.
    scheduler = Scheduler()
    runner = JobRunner(engine, store, inference, settings, predict)
    jobs = JobService(engine, inference, runner, scheduler, settings)
    housekeeping = Housekeeping(engine, scheduler, registry, uploads, jobs, is_leader=lambda: node.leader)
    await runner.start()
    await jobs.load_schedules()
    housekeeping.plan(settings.housekeeping_interval_s)
    scheduler.start()
    guard = CanaryGuard(registry.aliases, recorder, settings.canary_check_interval_s)
    guard.start()
    metrics = _metrics_registry(pool, recorder, registry, admin.keys, runner)
    metrics.register(PredictionLogCollector(predictions))
    drift = DriftService(engine, predictions, registry.aliases, interval_s=settings.drift_interval_s,
                         retention_s=settings.prediction_log_retention_s,
                         references=DatasetReference(engine, store, inference, settings), node=settings.node_name,
                         is_leader=lambda: node.leader)
    await drift.load()
    registry.on_delete.append(drift.forget)
    drift.start()
    metrics.register(DriftCollector(drift))
    follow_registry(node, registry, prediction_log_settings, drift)
    node.on(changes.SCHEDULE, jobs.reload_schedules)  # a schedule added or deleted through another node
    node.on(changes.KEY, admin.keys.apply_change)  # revoked or limited elsewhere: read the key again
    node.on(changes.USER_SESSIONS, admin.sign_ins.apply_change)  # sessions ended elsewhere: read them again
    for kind in (changes.SIGN_IN_FAILED, changes.SIGN_IN_FORGIVEN):  # one sign-in brake across the nodes
        node.on(kind, admin.sign_ins.apply_sign_in)
    admin.keys.limiter.nodes = lambda: node.live_nodes  # each node admits its share of a key's rate
    await node.start()
    return Services(
        settings=settings, engine=engine, store=store, pool=pool, keys=admin.keys, users=admin.users,
        sign_ins=admin.sign_ins, audit=AuditService(engine), registry=registry, aliases=registry.aliases,
        response_caches=registry.response_caches, uploads=uploads, recorder=recorder,
        reports=MetricsReportService(recorder, registry, pool), shadow=shadow, inference=inference, predict=predict,
        guard=guard, datasets=DatasetService(engine, store, scratch, settings), jobs=jobs, scheduler=scheduler,
        housekeeping=housekeeping, predictions=predictions, prediction_log_settings=prediction_log_settings,
        drift=drift, metrics_registry=metrics, node=node)
