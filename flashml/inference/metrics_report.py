"""The dashboard's numbers: requests, errors and latency over the last hour, and what runs where.

Shared by ``GET /api/v1/metrics`` and the console's dashboard. The series come from the in-process
``RequestMetrics`` recorder (``flashml.telemetry``): they start empty at each server start.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from flashml.registry.records import ServingInfo
from flashml.registry.service import RegistryService
from flashml.runtime.pool import LoadedModel, ModelPool
from flashml.telemetry import MinuteTotals, RequestMetrics
from flashml.telemetry import histogram as hist
from flashml.telemetry.memory import rss_bytes
from flashml.telemetry.recorder import WINDOW_MINUTES

UNKNOWN_MODEL = ""  # requests naming a model that serves nothing count under this name
GPU_NOT_MEASURED = "not measured: NVML (the NVIDIA driver's management library) could not be read"


@dataclass
class MetricsPoint:
    """One minute. ``rps`` divides by the seconds of the minute gone so far (the last minute is partial)."""

    timestamp: int  # the minute's start, seconds since the epoch (UTC)
    requests: int
    errors: int
    errors_4xx: int
    errors_5xx: int
    rejected: int  # 429 (a key over its limits) and 503 (a full queue); also counted in errors
    rps: float
    error_rate: float  # errors / requests; 0 without requests
    p50_ms: float | None  # of answered requests; None without any
    p99_ms: float | None


@dataclass
class MetricsSummary:
    """The whole window: the last hour, or since the server started when that is shorter."""

    window_s: float
    requests: int
    errors: int
    errors_4xx: int
    errors_5xx: int
    rejected: int
    rps: float
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class VersionState:
    version: int
    state: str


@dataclass
class ModelActivity:
    """A model (``""``: requests for models that serve nothing), its versions' states and its last hour."""

    model: str
    registered: bool
    serving_version: int | None  # the one version a call without a version goes to; None for a split or none
    serving: ServingInfo | None  # the registry's resolution, the split's weights included
    versions: list[VersionState]
    summary: MetricsSummary


@dataclass
class RunningVersion:
    """A loaded version: where it runs and what it holds. Host memory: RSS growth while its sessions were
    created. GPU memory: this process's GPU memory growth from before its sessions to after its warm-up."""

    model: str
    version: int
    device: str
    providers: list[str]
    instance_count: int
    in_flight: int
    queued: int
    requests: int  # since it was loaded
    last_hour: MetricsSummary  # requests that reached this version (after the key's limits and its lookup)
    host_memory_bytes: int | None
    gpu_memory_bytes: int | None
    gpu_memory_note: str | None
    loaded_at: float


@dataclass
class ProcessInfo:
    pid: int
    device: str  # where models run unless a version says otherwise
    cpu_count: int
    rss_bytes: int | None
    uptime_s: float
    gpu_memory_bytes: int | None  # this process's memory on its GPU (NVML); None on the CPU
    gpu_memory_note: str | None


@dataclass
class MetricsReport:
    generated_at: float
    window_minutes: int
    model: str | None  # the filter asked for; None: every model
    quantile_precision: float  # p50/p99 are within this relative error of the nearest-rank latency
    summary: MetricsSummary
    points: list[MetricsPoint]
    models: list[ModelActivity] = field(default_factory=list)
    running: list[RunningVersion] = field(default_factory=list)
    process: ProcessInfo | None = None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _rate(errors: int, requests: int) -> float:
    return round(errors / requests, 4) if requests else 0.0


def points(minutes: list[MinuteTotals], now: float) -> list[MetricsPoint]:
    out = []
    for m in minutes:
        start = m.minute * 60
        seconds = min(60.0, max(1.0, now - start))
        out.append(MetricsPoint(start, m.requests, m.errors, m.errors_4xx, m.errors_5xx, m.rejected,
                                round(m.requests / seconds, 3), _rate(m.errors, m.requests),
                                _ms(hist.quantile(m.latency, 0.5)), _ms(hist.quantile(m.latency, 0.99))))
    return out


def summary(minutes: list[MinuteTotals], now: float, started: float) -> MetricsSummary:
    total = MinuteTotals(-1)
    for m in minutes:
        total.add(m)
    window_s = max(1.0, min(now - minutes[0].minute * 60, now - started))
    return MetricsSummary(round(window_s, 1), total.requests, total.errors, total.errors_4xx, total.errors_5xx,
                          total.rejected, round(total.requests / window_s, 3), _rate(total.errors, total.requests),
                          _ms(hist.quantile(total.latency, 0.5)), _ms(hist.quantile(total.latency, 0.99)))


def running_version(loaded: LoadedModel, last_hour: MetricsSummary) -> RunningVersion:
    stats = loaded.batcher.stats()
    return RunningVersion(loaded.model, loaded.version, loaded.device, list(loaded.providers),
                          len(loaded.executors), loaded.in_flight, stats["queued"], loaded.requests, last_hour,
                          loaded.host_memory_bytes, loaded.gpu_memory_bytes,
                          GPU_NOT_MEASURED if loaded.on_gpu and loaded.gpu_memory_bytes is None else None,
                          loaded.loaded_at)


class MetricsReportService:
    """Builds the report from the request recorder, the registry's models and the pool's loaded versions."""

    def __init__(self, recorder: RequestMetrics, registry: RegistryService, pool: ModelPool) -> None:
        self.recorder = recorder
        self.registry = registry
        self.pool = pool

    async def report(self, model: str | None = None) -> MetricsReport:
        """The last hour for every model or one (404 for a model that neither exists nor had requests)."""
        return await _report(self.recorder, self.registry, self.pool, model)


async def _report(recorder: RequestMetrics, registry: RegistryService, pool: ModelPool,
                  model: str | None) -> MetricsReport:
    seen = {name for name, _ in recorder.keys()}
    models = await registry.list_models()
    if model is not None and model not in seen:
        await registry.get_model(model)  # raises the 404
    now = recorder.clock()
    minutes = recorder.minutes(model)
    per_model = recorder.grouped(lambda key: key[0])
    per_version = recorder.grouped(lambda key: key)

    def hour(series: list[MinuteTotals] | None) -> MetricsSummary:
        return summary(series or recorder.empty(), now, recorder.started)

    registered = {m.name for m in models}
    activity = [ModelActivity(m.name, True, m.serving.version if m.serving else None, m.serving,
                              [VersionState(v.version, v.state) for v in m.versions], hour(per_model.get(m.name)))
                for m in models]
    for name in sorted(seen - registered):  # deleted models, and names that serve nothing
        activity.append(ModelActivity(name, False, None, None, [], hour(per_model.get(name))))
    if model is not None:
        activity = [a for a in activity if a.model == model]
    loaded = sorted(pool.loaded(), key=lambda v: (v.model, v.version))
    running = [running_version(v, hour(per_version.get((v.model, v.version))))
               for v in loaded if model is None or v.model == model]
    device = pool.device
    gpu = await asyncio.to_thread(pool.gpu_reader, device) if device.startswith("cuda") else None
    process = ProcessInfo(os.getpid(), device, os.cpu_count() or 1, rss_bytes(), round(now - recorder.started, 1),
                          gpu, GPU_NOT_MEASURED if device.startswith("cuda") and gpu is None else None)
    return MetricsReport(now, WINDOW_MINUTES, model, round(hist.PRECISION, 4), summary(minutes, now, recorder.started),
                         points(minutes, now), activity, running, process)
