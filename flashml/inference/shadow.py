"""Shadow traffic: a share of an alias's requests also runs on a candidate version, in the background.

The caller's answer is computed and sent as usual; after it is computed, ``offer`` starts a task (no await
on the hot path) that runs the same inputs on the shadow version at batch-job priority and compares the two
answers: the same top label (argmax over the last axis, every row) and the largest absolute difference, and
both latencies (time in each version's batcher). At most ``max_concurrency`` shadow runs at once; a mirrored
request beyond that is dropped and counted. Everything is kept in memory per alias: running totals since the
shadow was set, latency histograms, and a ring of the latest comparisons (for the console's chart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flashml.errors import FlashMLError
from flashml.registry.alias_rules import Shadow
from flashml.registry.aliases import AliasService
from flashml.runtime.pool import ModelPool
from flashml.telemetry import histogram as hist

log = logging.getLogger("flashml.shadow")
RECENT = 100  # comparisons kept per alias
SHADOW_KEY = "flashml/shadow"
PRIORITY_BACKGROUND = 1


def compare(primary: dict[str, np.ndarray], shadow: dict[str, np.ndarray]) -> tuple[bool, float | None]:
    """(same top label in every output and row, largest absolute difference or None when not numeric)."""
    agree, largest = True, None
    for name, a in primary.items():
        b = shadow.get(name)
        if b is None or a.shape != b.shape:
            return False, None
        if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            largest = diff if largest is None else max(largest, diff)
            if a.ndim and a.shape[-1] > 1:
                agree = agree and bool(np.array_equal(np.argmax(a, axis=-1), np.argmax(b, axis=-1)))
            else:
                agree = agree and bool(np.array_equal(a, b))
        else:
            agree = agree and bool(np.array_equal(a, b))
    return agree, largest


@dataclass
class ShadowStats:
    """One alias's shadow since it was set (or since the server started)."""

    shadow: Shadow  # the alias's setting these numbers belong to: a new PUT starts from zero
    since: float = field(default_factory=time.time)
    pending: float = 0.0  # percent carried over between requests: 20 % mirrors every fifth request exactly
    mirrored: int = 0
    dropped: int = 0  # over the concurrency limit
    failed: int = 0  # the shadow version refused or failed
    compared: int = 0
    agreed: int = 0
    max_abs_diff: float | None = None
    sum_abs_diff: float = 0.0
    primary_latency: dict[int, int] = field(default_factory=dict)
    shadow_latency: dict[int, int] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))

    def report(self) -> dict[str, Any]:
        def ms(h: dict[int, int], q: float) -> float | None:
            v = hist.quantile(h, q)
            return None if v is None else round(v * 1000, 3)

        return {"version": self.shadow.version, "since": self.since, "mirrored": self.mirrored, "dropped": self.dropped,
                "failed": self.failed, "compared": self.compared, "agreed": self.agreed,
                "agreement": round(self.agreed / self.compared, 4) if self.compared else None,
                "max_abs_diff": self.max_abs_diff,
                "mean_max_abs_diff": round(self.sum_abs_diff / self.compared, 6) if self.compared else None,
                "latency_ms": {"primary": {"p50": ms(self.primary_latency, 0.5), "p99": ms(self.primary_latency, 0.99)},
                               "shadow": {"p50": ms(self.shadow_latency, 0.5), "p99": ms(self.shadow_latency, 0.99)}},
                "recent": list(self.recent)}


class ShadowService:
    def __init__(self, pool: ModelPool, max_concurrency: int) -> None:
        self.pool = pool
        self.max_concurrency = max_concurrency
        self.running = 0
        self.stats: dict[tuple[str, str], ShadowStats] = {}
        self._tasks: set[asyncio.Task] = set()

    def offer(self, model: str, alias: str, shadow: Shadow, inputs: dict[str, np.ndarray], names: list[str],
              outputs: dict[str, np.ndarray], primary_s: float, primary_version: int) -> None:
        """Called after the caller's answer is computed: maybe start a background run (never waits)."""
        stats = self.stats.get((model, alias))
        if stats is None or stats.shadow is not shadow:
            stats = self.stats[(model, alias)] = ShadowStats(shadow)
        stats.pending += shadow.percent
        if stats.pending < 100:
            return
        stats.pending -= 100
        stats.mirrored += 1
        if self.running >= self.max_concurrency:
            stats.dropped += 1
            return
        self.running += 1
        task = asyncio.get_running_loop().create_task(
            self._run(stats, model, shadow.version, inputs, names, outputs, primary_s, primary_version))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, stats: ShadowStats, model: str, number: int, inputs: dict[str, np.ndarray],
                   names: list[str], primary: dict[str, np.ndarray], primary_s: float, primary_version: int) -> None:
        entry: dict[str, Any] = {"at": round(time.time(), 3), "primary_version": primary_version,
                                 "primary_ms": round(primary_s * 1000, 3)}
        try:
            loaded = self.pool.get(model, number)
            if loaded is None:
                raise FlashMLError(f"{model} v{number} is not loaded.", code="version_not_loaded")
            started = time.perf_counter()
            answer = await loaded.run(inputs, names, key=SHADOW_KEY, priority=PRIORITY_BACKGROUND)
            shadow_s = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - a failing candidate is what shadowing is for finding out
            stats.failed += 1
            entry["error"] = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            stats.recent.append(entry)
            return
        finally:
            self.running -= 1
        agree, diff = compare(primary, answer)
        stats.compared += 1
        stats.agreed += agree
        if diff is not None:
            stats.max_abs_diff = diff if stats.max_abs_diff is None else max(stats.max_abs_diff, diff)
            stats.sum_abs_diff += diff
        for h, seconds in ((stats.primary_latency, primary_s), (stats.shadow_latency, shadow_s)):
            index = hist.bin_of(seconds)
            h[index] = h.get(index, 0) + 1
        entry.update(shadow_ms=round(shadow_s * 1000, 3), agree=agree, max_abs_diff=diff)
        stats.recent.append(entry)

    def report(self, model: str, alias: str, shadow: Shadow | None) -> dict[str, Any]:
        """What the alias's shadow saw; empty numbers until a request is mirrored."""
        stats = self.stats.get((model, alias))
        if stats is None or shadow is None or stats.shadow is not shadow:
            stats = ShadowStats(shadow) if shadow else None
        return {"model": model, "alias": alias, "shadow": shadow.to_dict() if shadow else None,
                **(stats.report() if stats else {})}

    async def alias_report(self, aliases: AliasService, model: str, alias: str) -> dict[str, Any]:
        """GET .../aliases/{alias}/shadow: the alias must exist (404 otherwise); no shadow: empty numbers."""
        await aliases.get_alias(model, alias)
        route = aliases.route(model, alias)
        return self.report(model, alias, route.shadow if route else None)

    def forget(self, model: str, alias: str | None = None) -> None:
        for key in [k for k in self.stats if k[0] == model and (alias is None or k[1] == alias)]:
            del self.stats[key]

    async def wait_idle(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
