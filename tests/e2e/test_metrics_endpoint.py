"""GET /metrics over real HTTP: after known traffic (successes, a cache hit, a 400, a 429 of a rate-limited key),
the exposition, parsed as Prometheus parses it, says exactly what was sent.

The shared test server listens on 127.0.0.1 with the default metrics_access (loopback), so the scrapes carry no
key. The model is this module's own, so its counters hold only this traffic.
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import onnx_models
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "metrics-e2e"
LIMITED = "metrics-e2e limited"  # the rate-limited key's name, a label of flashml_key_refusals
ROWS = (1, 2, 3)  # rows of the admin key's requests, each inputs of their own: cache misses, one batch each


def body(rows: int, first: float = 0.0) -> dict:
    data = [first + i for i in range(rows * 4)]
    return {"inputs": [{"name": "a", "datatype": "FP32", "shape": [rows, 4], "data": data},
                       {"name": "b", "datatype": "FP32", "shape": [rows, 4], "data": data}]}


def scrape(server, **headers: str) -> dict[tuple[str, frozenset], float]:
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)  # no key: this machine may read it
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(got: dict, name: str, **labels: str) -> float:
    return got.get((name, frozenset(labels.items())), 0.0)


class Sent:
    def __init__(self) -> None:
        self.successes = 0
        self.client_seconds = 0.0  # the successes' time as the client saw it: the server's is inside it


@pytest.fixture(scope="module")
def traffic(server, admin_key, tmp_path_factory) -> tuple[Sent, dict, dict]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as api:
        return send(server, api, tmp_path_factory)


def send(server, api: httpx.Client, tmp_path_factory) -> tuple[Sent, dict, dict]:
    before = scrape(server)
    assert upload(api, MODEL, onnx_models.add_model(tmp_path_factory.mktemp("metrics") / "add.onnx")
                  ).status_code == 201
    r = api.patch(f"/api/v1/models/{MODEL}", json={"response_cache": {"enabled": True}})
    assert r.status_code == 200, r.text
    limited = api.post("/api/v1/keys", json={"name": LIMITED, "role": "inference", "rate_limit_per_s": 0.01,
                                             "burst": 2})
    assert limited.status_code == 201, limited.text
    sent = Sent()
    infer = f"/v2/models/{MODEL}/infer"

    def call(client: httpx.Client, request: dict, status: int) -> httpx.Response:
        started = time.perf_counter()
        r = client.post(infer, json=request)
        assert r.status_code == status, r.text
        if status == 200:
            sent.successes += 1
            sent.client_seconds += time.perf_counter() - started
        return r

    for n in ROWS:
        assert call(api, body(n), 200).headers["FlashML-Cache"] == "miss"
    assert call(api, body(ROWS[0]), 200).headers["FlashML-Cache"] == "hit"
    bad = body(1)
    bad["inputs"][0]["data"] = [1.0, 2.0]  # a shape that disagrees with its data
    call(api, bad, 400)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {limited.json()['token']}"},
                      timeout=60) as client:
        call(client, body(1, first=100), 200)  # the burst of 2, on inputs the cache has not seen
        call(client, body(1, first=200), 200)
        assert call(client, body(1, first=300), 429).json()["code"] == "rate_limited"
    return sent, before, scrape(server)


def test_request_counts_agree_with_the_traffic(traffic):
    sent, _, got = traffic
    mv = {"model": MODEL, "version": "1"}
    assert value(got, "flashml_inference_request_success_total", **mv) == sent.successes == 6
    assert value(got, "flashml_inference_request_failure_total", **mv, reason="invalid") == 1
    # A key over its rate limit is refused before a version is picked: its failure has no version.
    assert value(got, "flashml_inference_request_failure_total", model=MODEL, version="", reason="rejected") == 1
    assert value(got, "flashml_key_refusals_total", key=LIMITED, reason="rate_limit") == 1
    assert value(got, "flashml_cache_num_hits_per_model_total", model=MODEL) == 1
    assert value(got, "flashml_cache_num_misses_per_model_total", model=MODEL) == 5


def test_batcher_counts_agree_with_the_traffic_and_tritons_statistics(traffic, api):
    _, _, got = traffic
    mv = {"model": MODEL, "version": "1"}
    rows_run = sum(ROWS) + 2  # the admin key's misses and the limited key's two single rows; the hit never ran
    assert value(got, "flashml_inference_count_total", **mv) == rows_run
    assert value(got, "flashml_inference_exec_count_total", **mv) == 5  # sent one at a time: a batch each
    assert value(got, "flashml_inference_batch_size_count", **mv) == 5
    assert value(got, "flashml_inference_batch_size_sum", **mv) == rows_run
    assert value(got, "flashml_inference_batch_size_bucket", **mv, le="1.0") == 3
    assert value(got, "flashml_inference_batch_size_bucket", **mv, le="2.0") == 4
    assert value(got, "flashml_inference_pending_request_count", **mv) == 0
    assert value(got, "flashml_model_loaded", **mv, device="cpu") == 1
    assert value(got, "flashml_model_memory_bytes", **mv, device="cpu") > 0
    (stats,) = api.get(f"/v2/models/{MODEL}/versions/1/stats").json()["model_stats"]
    assert (stats["inference_count"], stats["execution_count"]) == (rows_run, 5)
    assert value(got, "flashml_inference_queue_duration_us_total", **mv) == pytest.approx(
        stats["inference_stats"]["queue"]["ns"] / 1000, abs=1)
    assert value(got, "flashml_inference_compute_infer_duration_us_total", **mv) == pytest.approx(
        stats["inference_stats"]["compute_infer"]["ns"] / 1000, abs=1)


def test_latency_histogram_counts_every_success(traffic):
    sent, _, got = traffic
    mv = {"model": MODEL, "version": "1"}
    assert value(got, "flashml_inference_request_latency_seconds_count", **mv) == sent.successes
    assert value(got, "flashml_inference_request_latency_seconds_bucket", **mv, le="+Inf") == sent.successes
    total = value(got, "flashml_inference_request_latency_seconds_sum", **mv)
    assert 0 < total <= sent.client_seconds
    assert value(got, "flashml_inference_request_duration_us_total", **mv) == pytest.approx(total * 1e6)
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in got.items()
                     if name.endswith("latency_seconds_bucket") and mv.items() <= dict(labels).items())
    counts = [v for _, v in buckets]
    assert len(buckets) == 25 and counts == sorted(counts) and counts[-1] == sent.successes  # cumulative, to +Inf


def test_uploads_and_the_process_are_counted(traffic):
    _, before, got = traffic
    ready = ("flashml_model_uploads_total", frozenset({("outcome", "ready")}))
    assert got[ready] - before[ready] == 1
    assert value(got, "process_resident_memory_bytes") > 0 and value(got, "process_cpu_seconds_total") > 0


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(server):
    # This server trusts no proxy: a client on this machine cannot pass itself off as another, nor the reverse.
    assert value(scrape(server, **{"X-Forwarded-For": "203.0.113.9"}), "process_cpu_seconds_total") > 0
