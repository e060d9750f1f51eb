"""Prometheus buckets from the recorder's bins, and a registry per app.

The latency buckets are exact: each bucket holds exactly the answers at or below its bound, however the
recorder binned them, because every bound is a bin edge. The batch-size buckets count batches per row count.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flashml.telemetry import histogram as hist
from flashml.telemetry.prometheus import (
    BATCH_SIZE_BOUNDS,
    INF,
    LATENCY_BOUNDS,
    batch_size_buckets,
    latency_buckets,
    new_registry,
)


@pytest.mark.parametrize("seed", [0, 1])
def test_latency_buckets_count_exactly_the_answers_at_or_below_each_bound(seed):
    rng = np.random.default_rng(seed)
    seconds = np.concatenate([rng.lognormal(np.log(0.004), 1.5, 3000), [1e-6, 5e-6, 120.0, 1e4]])
    bins: dict[int, int] = {}
    for s in seconds:
        index = hist.bin_of(float(s))
        bins[index] = bins.get(index, 0) + 1
    buckets = latency_buckets(bins)
    assert len(buckets) == len(LATENCY_BOUNDS) + 1
    assert buckets[-1] == (INF, len(seconds))
    for (le, count), bound in zip(buckets, LATENCY_BOUNDS, strict=False):
        assert float(le) == bound
        assert count == int(np.sum(seconds <= bound)), le
    # Answers slower than the last bound (about 84 s) are only in +Inf.
    assert buckets[-2][1] == len(seconds) - 2


def test_latency_bounds_double_from_10_us_to_the_recorders_last_bin():
    assert LATENCY_BOUNDS[0] == hist.MIN_S and LATENCY_BOUNDS[1] == 2 * hist.MIN_S
    assert all(b == 2 * a for a, b in zip(LATENCY_BOUNDS, LATENCY_BOUNDS[1:], strict=False))
    assert 60 < LATENCY_BOUNDS[-1] < 100 and len(LATENCY_BOUNDS) == 24
    assert [le for le, _ in latency_buckets({})][:3] == ["1e-05", "2e-05", "4e-05"]
    assert all(count == 0 for _, count in latency_buckets({}))


def test_batch_size_buckets_are_cumulative_counts_of_batches():
    buckets = dict(batch_size_buckets({1: 2, 3: 1, 5: 4, 9: 1, 5000: 1}))
    assert (buckets["1.0"], buckets["2.0"], buckets["3.0"], buckets["5.0"], buckets["8.0"]) == (2, 2, 3, 7, 7)
    assert (buckets["12.0"], buckets["4096.0"], buckets[INF]) == (8, 8, 9)
    assert list(buckets)[:10] == ["1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "12.0", "16.0"]
    assert BATCH_SIZE_BOUNDS == sorted(BATCH_SIZE_BOUNDS) and BATCH_SIZE_BOUNDS[-1] == 4096


def test_each_app_has_its_own_registry_with_the_process_numbers():
    first, second = new_registry(), new_registry()
    assert first is not second and first is not REGISTRY
    names = {f.name for f in text_string_to_metric_families(generate_latest(first).decode())}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info", "python_gc_objects_collected"
            } <= names
    assert first.get_sample_value("process_resident_memory_bytes") > 0
