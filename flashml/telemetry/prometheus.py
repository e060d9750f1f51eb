"""Prometheus's side of the numbers FlashML already keeps: one registry per app, and histogram buckets.

Each app gets its own ``CollectorRegistry``, never prometheus_client's global one: the tests start several apps
in one process, and two apps must not see (or double-register) each other's collectors. Collectors read the
counters the request path keeps anyway at scrape time (``serving_collector``, ``gpu_collector``), so serving a
request pays nothing for Prometheus beyond what the recorder and the batchers already count.

The latency histogram's buckets are a subset of the recorder's logarithmic bins (``histogram``): one bucket bound
every doubling (every ``BINS_PER_DOUBLING`` bins), from 10 µs to about 84 s. Each bin lies wholly inside one
bucket, so the cumulative bucket counts are exact, not estimates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.utils import floatToGoString

from flashml.telemetry import histogram

INF = "+Inf"
# le = 10 µs * 2**k for every k whose bound lies below the recorder's last bin, which also holds slower answers.
LATENCY_BOUNDS = [histogram.MIN_S * 2 ** k for k in range(histogram.LAST_BIN // histogram.BINS_PER_DOUBLING + 1)]
# Rows per batch: every size up to 8 (small batches are where batching is judged), then powers of two and the
# halfway steps between them, up to sizes past any max_batch_size a model is likely to run.
BATCH_SIZE_BOUNDS = [1, 2, 3, 4, 5, 6, 7, 8] + [b for k in range(4, 13) for b in (3 * 2 ** (k - 2), 2 ** k)]


def new_registry() -> CollectorRegistry:
    """A registry of this app's own, with this process's CPU, memory, open files, Python and GC numbers."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def latency_buckets(bins: Mapping[int, int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets (``le``, count) of the recorder's latency bins; the last is ``+Inf``.

    Bin ``i`` holds latencies up to ``MIN_S * 2**(i / 8)``, so it counts in every bucket ``le = MIN_S * 2**k``
    with ``8 * k >= i``: its whole range is below that bound."""
    per_bound = [0] * len(LATENCY_BOUNDS)
    slower = 0
    for index, count in bins.items():
        k = -(-max(index, 0) // histogram.BINS_PER_DOUBLING)  # ceil(index / 8): the first bound that holds it
        if k < len(per_bound):
            per_bound[k] += count
        else:
            slower += count
    return _cumulative(LATENCY_BOUNDS, per_bound, slower)


def batch_size_buckets(runs: Mapping[int, int]) -> list[tuple[str, float]]:
    """Cumulative buckets of batches per size (``rows -> batches``)."""
    per_bound = [0] * len(BATCH_SIZE_BOUNDS)
    larger = 0
    for rows, batches in runs.items():
        k = next((i for i, bound in enumerate(BATCH_SIZE_BOUNDS) if rows <= bound), None)
        if k is None:
            larger += batches
        else:
            per_bound[k] += batches
    return _cumulative(BATCH_SIZE_BOUNDS, per_bound, larger)


def _cumulative(bounds: Iterable[float], counts: list[int], beyond: int) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        out.append((floatToGoString(bound), total))
    out.append((INF, total + beyond))
    return out
