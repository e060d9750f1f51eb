"""The serving collector: the exposition says what the recorder, a real loaded version's batcher, a response cache,
the key limiter, the registry and the job runner counted, under the metric names the dashboard and drift use."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flashml.auth.limits import KeyLimiter
from flashml.auth.principal import Principal
from flashml.errors import TooManyRequestsError
from flashml.registry.response_cache import ResponseCache
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.pool import ModelPool
from flashml.signature import Signature, TensorSpec
from flashml.telemetry import RequestMetrics
from flashml.telemetry.prometheus import new_registry
from flashml.telemetry.serving_collector import ServingCollector, ServingSources, failure_reason
from tests.helpers import onnx_models

ADD = Signature([TensorSpec("a", "FP32", [-1, 4]), TensorSpec("b", "FP32", [-1, 4])],
                [TensorSpec("sum", "FP32", [-1, 4])])  # tests/helpers/onnx_models.add_model
DELAY_S = 0.2  # the batcher's max_queue_delay: requests wait this long for company


def rows(n: int) -> dict[str, np.ndarray]:
    return {"a": np.ones((n, 4), np.float32), "b": np.ones((n, 4), np.float32)}


def samples(registry) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, from the text exposition as Prometheus reads it."""
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(got: dict, name: str, **labels: str) -> float:
    return got[(name, frozenset(labels.items()))]


def sources(pool, recorder, **numbers) -> ServingSources:
    return ServingSources(loaded=pool.loaded, requests=recorder, caches=lambda: numbers.get("caches", {}),
                          key_refusals=lambda: numbers.get("refusals", {}),
                          uploads=lambda: numbers.get("uploads", {}), rows_scored=lambda: numbers.get("rows", {}))


def test_failure_reasons_follow_triton():
    assert [failure_reason(s) for s in (429, 503, 504)] == ["rejected"] * 3
    assert [failure_reason(s) for s in (400, 413, 422)] == ["invalid"] * 3
    assert [failure_reason(s) for s in (500, 502)] == ["backend"] * 2
    assert [failure_reason(s) for s in (401, 403, 404, 409)] == ["other"] * 4


def test_exposition_agrees_with_what_was_counted(tmp_path):
    path = onnx_models.add_model(tmp_path / "add.onnx")
    recorder = RequestMetrics()
    pool = ModelPool("cpu")
    registry = new_registry()
    cache = ResponseCache(8, 1 << 20)
    limiter = KeyLimiter()
    scored = {("m", 1): 250}
    registry.register(ServingCollector(sources(pool, recorder, caches={"m": cache}, refusals=limiter.refusals,
                                               uploads={"ready": 2, "failed": 1}, rows=scored)))

    async def serve():
        loaded = await pool.load("m", 1, path, ADD, BatchingConfig(max_batch_size=8,
                                                                   max_queue_delay_us=int(DELAY_S * 1e6)))
        names = ["sum"]
        together = [asyncio.create_task(loaded.run(rows(n), names)) for n in (1, 2)]
        for _ in range(5):
            await asyncio.sleep(0)
        waiting = samples(registry)  # both wait in the queue for the delay
        await asyncio.gather(*together)  # one batch of 3 rows
        await loaded.run(rows(4), names)  # alone: a batch of 4
        got = samples(registry)
        await pool.close()
        return loaded, waiting, got

    for seconds in (0.25, 0.21, 0.3):
        recorder.record("m", 1, 200, seconds)
    for status in (400, 429, 504, 500):
        recorder.record("m", 1, status, 0.001)
    recorder.record("gone", None, 404, 0.001)
    cache.get(b"k")
    cache.put(b"k", {"sum": np.ones(4)})
    cache.get(b"k")
    cache.get(b"k")
    slow = Principal(1, "k1", "slow-client", "inference", None, "t", rate_limit_per_s=0.001, burst=1)
    limiter.admit(slow)
    for _ in range(2):
        with pytest.raises(TooManyRequestsError):
            limiter.admit(slow)

    loaded, waiting, got = asyncio.run(serve())
    mv = {"model": "m", "version": "1"}
    assert value(waiting, "flashml_inference_pending_request_count", **mv) == 2
    assert value(got, "flashml_inference_pending_request_count", **mv) == 0
    # From the batcher: 7 rows in 2 batches, of 3 and 4 rows; each request waited the delay in the queue.
    assert value(got, "flashml_inference_count_total", **mv) == 7
    assert value(got, "flashml_inference_exec_count_total", **mv) == 2
    assert value(got, "flashml_inference_batch_size_count", **mv) == 2
    assert value(got, "flashml_inference_batch_size_sum", **mv) == 7
    buckets = {le: value(got, "flashml_inference_batch_size_bucket", **mv, le=le) for le in ("2.0", "3.0", "4.0")}
    assert buckets == {"2.0": 0, "3.0": 1, "4.0": 2}
    timings = loaded.batcher.timings()
    assert value(got, "flashml_inference_queue_duration_us_total", **mv) == pytest.approx(timings["queued_s"] * 1e6)
    assert value(got, "flashml_inference_queue_duration_us_total", **mv) >= 3 * DELAY_S * 1e6 * 0.95
    assert value(got, "flashml_inference_compute_infer_duration_us_total", **mv) == pytest.approx(
        timings["run_s"] * 1e6)
    assert value(got, "flashml_model_loaded", **mv, device="cpu") == 1
    assert value(got, "flashml_model_memory_bytes", **mv, device="cpu") == loaded.memory_bytes > 0
    # From the recorder: successes, failures by reason, latency as a cumulative histogram.
    assert value(got, "flashml_inference_request_success_total", **mv) == 3
    for reason, count in (("invalid", 1), ("rejected", 2), ("backend", 1)):
        assert value(got, "flashml_inference_request_failure_total", **mv, reason=reason) == count
    assert value(got, "flashml_inference_request_failure_total", model="gone", version="", reason="other") == 1
    # A reason that has not happened is there at 0 from the series' first request, so rate() sees its first burst.
    assert value(got, "flashml_inference_request_failure_total", **mv, reason="other") == 0
    assert value(got, "flashml_inference_request_failure_total", model="gone", version="", reason="backend") == 0
    assert value(got, "flashml_inference_request_latency_seconds_count", **mv) == 3
    assert value(got, "flashml_inference_request_latency_seconds_sum", **mv) == pytest.approx(0.76)
    assert value(got, "flashml_inference_request_duration_us_total", **mv) == pytest.approx(0.76e6)
    le = {"0.16384": 0, "0.32768": 3, "+Inf": 3}
    assert {b: value(got, "flashml_inference_request_latency_seconds_bucket", **mv, le=b) for b in le} == le
    # The rest.
    assert value(got, "flashml_cache_num_hits_per_model_total", model="m") == 2
    assert value(got, "flashml_cache_num_misses_per_model_total", model="m") == 1
    assert value(got, "flashml_key_refusals_total", key="slow-client", reason="rate_limit") == 2
    assert value(got, "flashml_model_uploads_total", outcome="ready") == 2
    assert value(got, "flashml_model_uploads_total", outcome="failed") == 1
    assert value(got, "flashml_job_rows_scored_total", **mv) == 250
    scored[("m", 1)] += 10  # read at scrape time, never copied at registration
    again = samples(registry)
    assert value(again, "flashml_job_rows_scored_total", **mv) == 260
    assert not any(name == "flashml_model_loaded" for name, _ in again)  # unloaded: its gauges are gone


def test_an_idle_server_exposes_every_family_and_a_clashing_name_is_refused():
    registry = new_registry()
    collector = ServingCollector(sources(ModelPool("cpu"), RequestMetrics()))
    registry.register(collector)
    families = {f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())}
    for name, kind in (("flashml_inference_request_success", "counter"), ("flashml_key_refusals", "counter"),
                       ("flashml_inference_request_latency_seconds", "histogram"),
                       ("flashml_inference_batch_size", "histogram"), ("flashml_model_memory_bytes", "gauge")):
        assert families[name] == kind
    assert value(samples(registry), "flashml_model_uploads_total", outcome="failed") == 0
    # Another part (drift, prediction logging) that reused one of these names would fail at start, not silently.
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(ServingCollector(sources(ModelPool("cpu"), RequestMetrics())))
