"""Automatic rollback of a canary: a background check of every guarded split, every few seconds.

A guard (``alias_rules.Guard``) names thresholds for a canary (every version of the split but the stable one,
the heaviest): an error rate and a p99 latency over a window of seconds, judged once the canary answered at
least ``min_requests`` in it. The numbers come from the request metrics recorder (per version and minute):
the check keeps snapshots of each canary's running totals and subtracts the one from a window ago, so the
hot path pays nothing for it. When a threshold is crossed the alias goes back to the stable version alone,
and the audit log says why, with the numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from flashml.event_loop import every
from flashml.registry.alias_rules import Guard
from flashml.registry.aliases import AliasService, Route
from flashml.telemetry import RequestMetrics
from flashml.telemetry import histogram as hist

log = logging.getLogger("flashml.guard")


@dataclass
class Totals:
    """A version's requests, errors and latency histogram (answered requests) in the recorder's last hour."""

    requests: int = 0
    errors: int = 0
    latency: dict[int, int] = field(default_factory=dict)

    def minus(self, earlier: Totals) -> Totals:
        latency = {i: c - earlier.latency.get(i, 0) for i, c in self.latency.items()}
        return Totals(max(0, self.requests - earlier.requests), max(0, self.errors - earlier.errors),
                      {i: c for i, c in latency.items() if c > 0})


def totals(recorder: RequestMetrics, model: str, version: int) -> Totals:
    out = Totals()
    for minute in recorder.minutes(model, version):
        out.requests += minute.requests
        out.errors += minute.errors
        for index, count in minute.latency.items():
            out.latency[index] = out.latency.get(index, 0) + count
    return out


class Verdict(TypedDict):
    """The canary's numbers over the window, and the thresholds they crossed."""

    requests: int
    errors: int
    error_rate: float
    p99_ms: float | None  # None: no answered request in the window
    crossed: list[str]


def verdict(route: Route, window: Totals) -> Verdict | None:
    """The numbers that crossed the route's guard, or None (too few requests, or within the thresholds)."""
    guard = route.guard
    if guard is None or window.requests < guard.min_requests:
        return None
    rate = window.errors / window.requests
    p99 = hist.quantile(window.latency, 0.99)
    p99_ms = None if p99 is None else round(p99 * 1000, 3)
    crossed = []
    if guard.max_error_rate is not None and rate > guard.max_error_rate:
        crossed.append("max_error_rate")
    if guard.max_p99_ms is not None and p99_ms is not None and p99_ms > guard.max_p99_ms:
        crossed.append("max_p99_ms")
    if not crossed:
        return None
    return {"requests": window.requests, "errors": window.errors, "error_rate": round(rate, 4), "p99_ms": p99_ms,
            "crossed": crossed}


def _split_guard(route: Route) -> Guard | None:
    """The guard of a split (a canary beside the stable version); None for a route that is not a guarded split."""
    return route.guard if len(route.weights) >= 2 else None


class CanaryGuard:
    def __init__(self, aliases: AliasService, recorder: RequestMetrics, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.aliases = aliases
        self.recorder = recorder
        self.interval_s = interval_s
        self.clock = clock
        # (model, alias) -> (the route measured, snapshots (when, {canary: totals}) covering its window)
        self._history: dict[tuple[str, str], tuple[Route, deque[tuple[float, dict[int, Totals]]]]] = {}
        self._task: asyncio.Task | None = None
        aliases.listeners.append(self._route_changed)

    def _route_changed(self, model: str, name: str, route: Route) -> None:
        # A new guarded split is measured from the moment it takes traffic: were its first snapshot taken at the
        # next check instead, the errors of its first seconds would be in that baseline and never count.
        if _split_guard(route) is not None:
            self._history[(model, name)] = (route, deque([(self.clock(), self._snapshot(model, route))]))

    def _snapshot(self, model: str, route: Route) -> dict[int, Totals]:
        return {n: totals(self.recorder, model, n) for n in route.numbers if n != route.stable}

    def start(self) -> None:
        self._task = asyncio.create_task(every(self.interval_s, self.check, log, "the canary check"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


    async def check(self) -> list[dict]:
        """One round over every guarded split; returns what it rolled back (the audit details)."""
        now, seen, rolled = self.clock(), set(), []
        for model, routes in list(self.aliases.routes.items()):
            for name, route in list(routes.items()):
                guard = _split_guard(route)
                if guard is None:
                    continue
                seen.add((model, name))
                found = self._history.get((model, name))
                if found is None or found[0] is not route:  # new or changed: measure from now on
                    found = self._history[(model, name)] = (route, deque())
                snapshots = found[1]
                snapshots.append((now, self._snapshot(model, route)))
                while len(snapshots) >= 2 and snapshots[1][0] <= now - guard.window_s:
                    snapshots.popleft()
                since, base = snapshots[0]
                for number, current in snapshots[-1][1].items():
                    crossed = verdict(route, current.minus(base[number]))
                    if crossed is None:
                        continue
                    detail = {"canary": number, "stable": route.stable, "window_s": guard.window_s,
                              "measured_s": round(now - since, 1), **crossed}
                    if await self.aliases.guard_rollback(model, name, route, detail):
                        log.warning("canary v%d of %s/%s rolled back to v%d: %s", number, model, name, route.stable,
                                    crossed)
                        rolled.append({"model": model, "alias": name, **detail})
                    break
        for key in set(self._history) - seen:
            del self._history[key]
        return rolled
