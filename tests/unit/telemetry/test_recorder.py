"""The request-metrics recorder: minute buckets that roll over, errors kept apart, mergeable quantiles."""

from __future__ import annotations

import numpy as np
import pytest

from flashml.inference.metrics_report import points, summary
from flashml.telemetry import RequestMetrics
from flashml.telemetry import histogram as hist
from flashml.telemetry.recorder import OTHER, WINDOW_MINUTES


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


def test_requests_land_in_their_minute_and_roll_out_after_an_hour():
    clock = Clock(T0 + 5)
    m = RequestMetrics(clock)
    m.record("a", 1, 200, 0.002)
    m.record("a", 1, 200, 0.004)
    clock.t = T0 + 65  # the next minute
    m.record("a", 1, 200, 0.003)
    minutes = m.minutes()
    assert len(minutes) == WINDOW_MINUTES
    assert [x.requests for x in minutes[-2:]] == [2, 1]
    assert minutes[-1].minute * 60 == T0 + 60
    assert sum(x.requests for x in minutes) == 3

    # 59 minutes later the first minute is the oldest one shown; a minute after that it is gone.
    clock.t = T0 + 59 * 60 + 1
    assert sum(x.requests for x in m.minutes()) == 3 and m.minutes()[0].requests == 2
    clock.t = T0 + 60 * 60 + 1
    assert sum(x.requests for x in m.minutes()) == 1
    # The ring slot of minute 0 is reused for minute 60: the old counts do not leak into the new minute.
    m.record("a", 1, 200, 0.001)
    assert m.minutes()[-1].requests == 1
    clock.t = T0 + 2 * 3600
    assert m.keys() == [] and sum(x.requests for x in m.minutes()) == 0  # idle series are forgotten


def test_errors_are_counted_apart_and_rejections_too():
    clock = Clock(T0)
    m = RequestMetrics(clock)
    for status in (200, 200, 400, 404, 429, 500, 503, 504):
        m.record("a", 1, status, 0.01)
    (now,) = m.minutes()[-1:]
    assert (now.requests, now.errors, now.errors_4xx, now.errors_5xx, now.rejected) == (8, 6, 3, 3, 2)
    assert sum(now.latency.values()) == 2  # latency is of answered requests only
    clock.t = T0 + 30
    (point,) = points(m.minutes()[-1:], clock.t)
    assert point.error_rate == 0.75 and point.rps == round(8 / 30, 3)
    assert point.p50_ms == pytest.approx(10, rel=hist.PRECISION)


def test_filters_by_model_and_version():
    m = RequestMetrics(Clock(T0))
    m.record("a", 1, 200, 0.01)
    m.record("a", 2, 200, 0.01)
    m.record("b", 1, 500, 0.01)
    total = lambda **kw: sum(x.requests for x in m.minutes(**kw))  # noqa: E731
    assert (total(), total(model="a"), total(model="a", version=2)) == (3, 2, 1)
    assert (total(model="b"), total(model="c")) == (1, 0)


def test_series_are_bounded():
    m = RequestMetrics(Clock(T0), max_series=3)
    for i in range(10):
        m.record(f"name-{i}", None, 404, 0.0001)
    assert len(m.keys()) == 4 and (OTHER, None) in m.keys()  # three names, then the rest as one
    assert sum(x.requests for x in m.minutes()) == 10
    m.clock.t = T0 + 3600 + 60  # an hour later the idle names make room again
    m.record("fresh", 1, 200, 0.001)
    assert ("fresh", 1) in m.keys() and (OTHER, None) not in m.keys()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantiles_merged_across_minutes_match_numpy(seed):
    rng = np.random.default_rng(seed)
    clock = Clock(T0)
    m = RequestMetrics(clock)
    samples = []
    for minute in range(20):  # different distributions per minute, merged over the window
        clock.t = T0 + 60 * minute + 1
        latencies = rng.lognormal(mean=np.log(0.003 * (1 + minute % 4)), sigma=0.8, size=int(rng.integers(50, 400)))
        for s in latencies:
            m.record("a", 1, 200, float(s))
        samples.extend(latencies)
    s = summary(m.minutes(), clock.t, T0)
    assert s.requests == len(samples)
    for q, got in ((50, s.p50_ms), (99, s.p99_ms)):
        want = np.percentile(samples, q, method="inverted_cdf") * 1000
        assert got == pytest.approx(want, rel=hist.PRECISION + 1e-6), q


def test_histogram_bins_and_edges():
    assert hist.bin_of(0) == 0 and hist.bin_of(hist.MIN_S) == 0
    assert hist.bin_of(1e6) == hist.LAST_BIN
    for seconds in (2e-5, 1e-4, 0.0123, 0.5, 7.0, 99.0):
        assert abs(hist.bin_value(hist.bin_of(seconds)) / seconds - 1) <= hist.PRECISION + 1e-9
    assert hist.quantile({}, 0.5) is None
    merged = hist.merge([{3: 1}, {3: 2, 5: 1}])
    assert merged == {3: 3, 5: 1} and hist.quantile(merged, 1.0) == hist.bin_value(5)


def test_recording_needs_no_event_loop_and_keeps_memory_bounded():
    clock = Clock(T0)
    m = RequestMetrics(clock)
    for i in range(3 * 3600):  # three hours, a request a second
        clock.t = T0 + i
        m.record("a", 1, 200, 0.001 * (1 + i % 50))
    series = m._series[("a", 1)]
    assert len(series.ring) == WINDOW_MINUTES
    assert all(len(b.latency) <= hist.LAST_BIN + 1 for b in series.ring if b)
    assert sum(x.requests for x in m.minutes()) == 3600  # the last hour, exactly


def test_totals_are_cumulative_past_the_hour_window():
    """GET /metrics reads totals since the series began: the minute ring forgets, the totals do not."""
    clock = Clock(T0)
    m = RequestMetrics(clock)
    latencies = [0.002, 0.004, 0.5]
    for i, seconds in enumerate(latencies):
        clock.t = T0 + i * 1800  # one every half hour: the first is out of the ring when the last arrives
        m.record("a", 1, 200, seconds)
    for status in (400, 400, 429, 500):
        m.record("a", 1, status, 0.01)
    m.record("b", None, 404, 0.001)
    assert sum(x.requests for x in m.minutes(model="a")) == 6  # the first answer left the window
    totals = {(t.model, t.version): t for t in m.totals()}
    a = totals[("a", 1)]
    assert sum(a.latency.values()) == 3 and a.seconds == pytest.approx(sum(latencies))
    assert a.latency == {hist.bin_of(s): 1 for s in latencies}
    assert a.failures == {400: 2, 429: 1, 500: 1}
    b = totals[("b", None)]
    assert (b.latency, b.seconds, b.failures) == ({}, 0.0, {404: 1})
    a.latency.clear()  # a copy: a reader cannot change the counts
    assert sum(m.totals()[0].latency.values()) == 3
