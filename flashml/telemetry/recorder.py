"""Request counts, errors and latency per model version, per minute, for the last hour: a ring buffer.

Recording is on the hot path of every inference request: a dict lookup, a few additions and one histogram
bin (a few microseconds, no lock: it runs on the event loop's thread, as do the readers). Memory is bounded:
each series keeps at most ``WINDOW_MINUTES`` buckets (created lazily) of at most ``histogram.LAST_BIN + 1``
bins, and there are at most ``max_series`` series; requests beyond that count under ``OTHER``.

Each series also keeps cumulative totals since it was made (``totals``), which GET /metrics exposes as
Prometheus counters and a histogram: one more dict increment per request (and a float addition per success).
A series forgotten after an idle hour starts again from zero, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from flashml.telemetry import histogram

WINDOW_MINUTES = 60
OTHER = "(other)"
REJECTIONS = frozenset({429, 503})  # over a key's limit, or a full queue: refused before running


@dataclass(slots=True)
class MinuteTotals:
    """One minute of one series, or of several merged. ``latency``: histogram bins of answered requests."""

    minute: int  # minutes since the epoch (UTC)
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    rejected: int = 0  # 429 and 503, also counted in errors_4xx / errors_5xx
    latency: dict[int, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.errors_4xx + self.errors_5xx

    def add(self, other: MinuteTotals) -> None:
        self.requests += other.requests
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.rejected += other.rejected
        for index, count in other.latency.items():
            self.latency[index] = self.latency.get(index, 0) + count


@dataclass(slots=True)
class SeriesTotals:
    """One series since it was made: answered requests' latency bins and their exact seconds, failures per status."""

    model: str
    version: int | None
    latency: dict[int, int]  # histogram bin -> answered requests
    seconds: float  # the answered requests' latencies added up
    failures: dict[int, int]  # HTTP status -> requests


class _Series:
    __slots__ = ("ring", "latency", "seconds", "failures")

    def __init__(self) -> None:
        self.ring: list[MinuteTotals | None] = [None] * WINDOW_MINUTES
        self.latency: dict[int, int] = {}  # cumulative, for Prometheus (the ring forgets after an hour)
        self.seconds = 0.0
        self.failures: dict[int, int] = {}

    def bucket(self, minute: int) -> MinuteTotals:
        slot = minute % WINDOW_MINUTES
        bucket = self.ring[slot]
        if bucket is None or bucket.minute != minute:  # that slot last held a minute an hour or more ago
            bucket = self.ring[slot] = MinuteTotals(minute)
        return bucket

    def newest(self) -> int:
        return max((b.minute for b in self.ring if b is not None), default=-1)


class RequestMetrics:
    """The recorder. ``clock`` returns seconds since the epoch (injectable for tests)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_series: int = 512) -> None:
        self.clock = clock
        self.max_series = max_series
        self.started = clock()
        self._series: dict[tuple[str, int | None], _Series] = {}
        self._swept = -1  # the minute of the last sweep for idle series, at most one a minute on the hot path

    def record(self, model: str, version: int | None, status: int, seconds: float) -> None:
        """One finished request: its HTTP status and how long it took from arrival to answer."""
        series = self._series.get((model, version))
        if series is None:
            if len(self._series) >= self.max_series and self._swept != int(self.clock() // 60):
                self._forget_idle()
            key = (model, version) if len(self._series) < self.max_series else (OTHER, None)
            series = self._series.setdefault(key, _Series())
        bucket = series.bucket(int(self.clock() // 60))
        bucket.requests += 1
        if status < 400:
            index = histogram.bin_of(seconds)
            bucket.latency[index] = bucket.latency.get(index, 0) + 1
            series.latency[index] = series.latency.get(index, 0) + 1
            series.seconds += seconds
            return
        series.failures[status] = series.failures.get(status, 0) + 1
        if status >= 500:
            bucket.errors_5xx += 1
        else:
            bucket.errors_4xx += 1
        if status in REJECTIONS:
            bucket.rejected += 1

    def totals(self) -> list[SeriesTotals]:
        """Every series' cumulative totals (copies), for a Prometheus scrape."""
        return [SeriesTotals(model, version, dict(s.latency), s.seconds, dict(s.failures))
                for (model, version), s in self._series.items()]

    def keys(self) -> list[tuple[str, int | None]]:
        """The series that saw a request in the last hour."""
        self._forget_idle()
        return list(self._series)

    def minutes(self, model: str | None = None, version: int | None = None) -> list[MinuteTotals]:
        """The last ``WINDOW_MINUTES`` minutes, oldest first, the current (partial) minute last; merged over
        every series, or those of ``model`` (and ``version`` when given)."""
        def wanted(key: tuple[str, int | None]) -> bool:
            return (model is None or key[0] == model) and (version is None or key[1] == version)

        return self.grouped(lambda key: 0 if wanted(key) else None).get(0) or self.empty()

    def grouped(self, group: Callable[[tuple[str, int | None]], Hashable | None]
                ) -> dict[Hashable, list[MinuteTotals]]:
        """The last hour merged per group of series, in one pass: ``group(key)`` names a series' group
        (None: leave it out), e.g. ``lambda key: key[0]`` per model, ``lambda key: key`` per version."""
        first = int(self.clock() // 60) - WINDOW_MINUTES + 1
        out: dict[Hashable, list[MinuteTotals]] = {}
        for key, series in self._series.items():
            name = group(key)
            if name is None:
                continue
            minutes = out.get(name)
            if minutes is None:
                minutes = out[name] = self.empty()
            for bucket in series.ring:
                if bucket is not None and first <= bucket.minute < first + WINDOW_MINUTES:
                    minutes[bucket.minute - first].add(bucket)
        return out

    def empty(self) -> list[MinuteTotals]:
        """The last hour with no requests in it."""
        first = int(self.clock() // 60) - WINDOW_MINUTES + 1
        return [MinuteTotals(m) for m in range(first, first + WINDOW_MINUTES)]

    def _forget_idle(self) -> None:
        """Drop series without a request in the last hour (deleted versions, names that never existed)."""
        self._swept = int(self.clock() // 60)
        oldest = self._swept - WINDOW_MINUTES + 1
        for key in [k for k, s in self._series.items() if s.newest() < oldest]:
            del self._series[key]
