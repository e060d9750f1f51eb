"""The serving numbers as Prometheus metric families, read at scrape time from the counters that already exist.

Names follow Triton's metrics with ``flashml_`` in place of ``nv_`` (``nv_inference_request_success`` is
``flashml_inference_request_success``), labelled ``model`` and ``version``; prometheus_client adds ``_total`` to
counters. The sources:

- the request recorder (``RequestMetrics.totals``): requests answered and failed, and their latency, counted where
  the request arrives (V2 infer and the task endpoints), cache hits included;
- each loaded version's batcher (``Batcher.timings``, as Triton's statistics extension reads it): rows and batches
  run, queue and compute time, queued requests, batch sizes. Batch jobs and warm-ups run through the batcher too,
  so they count there; a cache hit never reaches it. These restart from zero when a version is loaded again;
- response caches, the key limiter's refusals, the registry's finished uploads, the job runner's scored rows.

This module knows them only by the few attributes it reads (the protocols below): the composition root hands
them in, so telemetry stays below the layers that own them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from flashml.telemetry.prometheus import batch_size_buckets, latency_buckets
from flashml.telemetry.recorder import REJECTIONS, RequestMetrics

MV = ["model", "version"]
MVD = ["model", "version", "device"]
US = 1e6  # Triton's durations are cumulative microseconds


class Timed(Protocol):
    def timings(self) -> dict[str, Any]: ...
    def stats(self) -> dict[str, Any]: ...


class LoadedVersion(Protocol):
    """What is read of a loaded version (``flashml.runtime.pool.LoadedModel``)."""

    @property
    def model(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def batcher(self) -> Timed: ...
    @property
    def memory_bytes(self) -> int: ...


class CacheCounts(Protocol):
    """What is read of a model's response cache (``flashml.registry.response_cache.ResponseCache``)."""

    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...


@dataclass(frozen=True)
class ServingSources:
    """Where the numbers live, each read when Prometheus scrapes."""

    loaded: Callable[[], Iterable[LoadedVersion]]  # the pool's loaded versions
    requests: RequestMetrics
    caches: Callable[[], Mapping[str, CacheCounts]]  # model -> its response cache, while enabled
    key_refusals: Callable[[], Mapping[tuple[str, str], int]]  # (key name, rate_limit|quota) -> refusals
    uploads: Callable[[], Mapping[str, int]]  # ready|failed -> uploads that finished validation
    rows_scored: Callable[[], Mapping[tuple[str, int], int]]  # (model, version) -> rows batch jobs scored


FAILURE_REASONS = ("rejected", "invalid", "backend", "other")


def failure_reason(status: int) -> str:
    """Triton's failure reasons for an HTTP status: refused before running (over a limit, a full queue, a wait
    past its timeout), inputs the model cannot take, the model failing, or anything else (unknown model, ...)."""
    if status in REJECTIONS or status == 504:
        return "rejected"
    if status in (400, 413, 422):
        return "invalid"
    if status >= 500:
        return "backend"
    return "other"


class ServingCollector:
    """A prometheus_client collector: ``collect`` builds fresh metric families from ``sources`` on every scrape."""

    def __init__(self, sources: ServingSources) -> None:
        self.sources = sources

    def describe(self) -> Iterator[Metric]:
        """The families without samples: the registry learns the names without a scrape at registration."""
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        f = _Families()
        self._requests(f)
        self._batchers(f)
        src = self.sources
        for model, cache in sorted(src.caches().items()):
            f.cache_hits.add_metric([model], cache.hits)
            f.cache_misses.add_metric([model], cache.misses)
        for (name, reason), count in sorted(src.key_refusals().items()):
            f.refusals.add_metric([name, reason], count)
        for outcome in ("ready", "failed"):
            f.uploads.add_metric([outcome], src.uploads().get(outcome, 0))
        for (model, version), rows in sorted(src.rows_scored().items()):
            f.rows_scored.add_metric([model, str(version)], rows)
        yield from f.all()

    def _requests(self, f: _Families) -> None:
        for series in self.sources.requests.totals():
            labels = [series.model, "" if series.version is None else str(series.version)]
            answered = sum(series.latency.values())
            f.success.add_metric(labels, answered)
            # Every reason from the series' first request on, 0 until it happens (as Triton does): a series that
            # first appears above 0 hides its first burst from Prometheus's rate() and increase().
            reasons = dict.fromkeys(FAILURE_REASONS, 0)
            for status, count in series.failures.items():
                reason = failure_reason(status)
                reasons[reason] = reasons.get(reason, 0) + count
            for reason, count in sorted(reasons.items()):
                f.failure.add_metric([*labels, reason], count)
            f.request_us.add_metric(labels, series.seconds * US)
            f.latency.add_metric(labels, latency_buckets(series.latency), series.seconds)

    def _batchers(self, f: _Families) -> None:
        for loaded in sorted(self.sources.loaded(), key=lambda v: (v.model, v.version)):
            labels = [loaded.model, str(loaded.version)]
            t = loaded.batcher.timings()
            f.inferences.add_metric(labels, t["rows"])
            f.executions.add_metric(labels, t["batches"])
            f.queue_us.add_metric(labels, t["queued_s"] * US)
            f.compute_us.add_metric(labels, t["run_s"] * US)
            f.pending.add_metric(labels, loaded.batcher.stats()["queued"])
            runs = {rows: n for rows, (n, _) in t["runs_by_size"].items()}
            f.batch_size.add_metric(labels, batch_size_buckets(runs), sum(rows * n for rows, n in runs.items()))
            f.loaded.add_metric([*labels, loaded.device], 1)
            f.memory.add_metric([*labels, loaded.device], loaded.memory_bytes)


class _Families:
    """One scrape's families, each named once here."""

    def __init__(self) -> None:
        self.success = CounterMetricFamily(
            "flashml_inference_request_success", "Inference requests answered (2xx), response-cache hits included",
            labels=MV)
        self.failure = CounterMetricFamily(
            "flashml_inference_request_failure", "Inference requests that failed, by reason: rejected (over a key's "
            "limit, a full queue, a timeout), invalid (inputs refused), backend (the model failed), other",
            labels=[*MV, "reason"])
        self.inferences = CounterMetricFamily(
            "flashml_inference_count", "Rows (samples) run by the model, batch jobs included, cache hits not",
            labels=MV)
        self.executions = CounterMetricFamily(
            "flashml_inference_exec_count", "Batches run by the model (average batch size: inference_count over "
            "this)", labels=MV)
        self.request_us = CounterMetricFamily(
            "flashml_inference_request_duration_us", "Cumulative time of answered requests from arrival to answer, "
            "in microseconds", labels=MV)
        self.queue_us = CounterMetricFamily(
            "flashml_inference_queue_duration_us", "Cumulative time answered requests waited in the batcher's queue, "
            "in microseconds", labels=MV)
        self.compute_us = CounterMetricFamily(
            "flashml_inference_compute_infer_duration_us", "Cumulative time of the batches answered requests ran in "
            "(merge, run and split; each request is charged its whole batch), in microseconds", labels=MV)
        self.pending = GaugeMetricFamily(
            "flashml_inference_pending_request_count", "Requests waiting in the batcher's queue now", labels=MV)
        self.latency = HistogramMetricFamily(
            "flashml_inference_request_latency_seconds", "Answered requests' time from arrival to answer",
            labels=MV)
        self.batch_size = HistogramMetricFamily(
            "flashml_inference_batch_size", "Rows per batch the model ran", labels=MV)
        self.cache_hits = CounterMetricFamily(
            "flashml_cache_num_hits_per_model", "Requests answered from the model's response cache", labels=["model"])
        self.cache_misses = CounterMetricFamily(
            "flashml_cache_num_misses_per_model", "Requests the model's response cache did not hold",
            labels=["model"])
        self.refusals = CounterMetricFamily(
            "flashml_key_refusals", "Inference requests an API key's rate limit or daily quota refused",
            labels=["key", "reason"])
        self.uploads = CounterMetricFamily(
            "flashml_model_uploads", "Uploaded versions that finished validation, by outcome", labels=["outcome"])
        self.rows_scored = CounterMetricFamily(
            "flashml_job_rows_scored", "Dataset rows batch jobs scored (bad rows skipped are not)", labels=MV)
        self.loaded = GaugeMetricFamily(
            "flashml_model_loaded", "1 for each version loaded in this process, on its device", labels=MVD)
        self.memory = GaugeMetricFamily(
            "flashml_model_memory_bytes", "Memory a loaded version holds on its device (measured at load; at least "
            "its files' size)", labels=MVD)

    def all(self) -> list[Metric]:
        return list(vars(self).values())
