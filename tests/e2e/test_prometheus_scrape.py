"""A real Prometheus scrapes a real FlashML: after known traffic, what it stored agrees with what was sent.

Debian's prometheus (tests/helpers/prometheus.py) scrapes the shared test server's GET /metrics every second; the
test sends successes with known row counts and some 400s to a model of its own, waits for a scrape that started
after the last answer, and asks Prometheus's HTTP API, as a Grafana panel would. A second server with
metrics_access=key is scraped with and without the key file docs/observability.md tells users to write.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.prometheus import PrometheusServer, ScrapeTarget
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "scraped"
ROWS = (1, 2, 3, 4, 5, 1, 2, 3)  # rows per successful request, sent one after another (no two share a batch)
BAD_REQUESTS = 3


def add_body(rows: int) -> dict:
    data = [float(i) for i in range(rows * 4)]
    return {"inputs": [{"name": "a", "datatype": "FP32", "shape": [rows, 4], "data": data},
                       {"name": "b", "datatype": "FP32", "shape": [rows, 4], "data": data}]}


def bad_body() -> dict:
    """Valid JSON the model cannot take: a shape that disagrees with the data, answered 400."""
    return {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0]},
                       {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0, 3.0, 4.0]}]}


class Scraped:
    """The two scrapes the checks compare: ``before`` (after one primer request that loaded and warmed the version)
    and ``after`` the traffic; and the slowest answer the client saw."""

    def __init__(self, prom: PrometheusServer) -> None:
        self.prom = prom
        self.before = self.after = 0.0
        self.slowest_s = 0.0

    def now(self, promql: str) -> float:
        return self.prom.value(promql, at=self.after)

    def sent(self, promql: str) -> float:
        """How much ``promql`` grew between the two scrapes: what the traffic added."""
        return self.prom.value(promql, at=self.after) - self.prom.value(promql, at=self.before)


@pytest.fixture(scope="module")
def scraped(server: ServerProcess, admin_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120)
    path = onnx_models.add_model(tmp_path_factory.mktemp("scraped") / "add.onnx")
    r = upload(api, MODEL, path)
    assert r.status_code == 201, r.text
    # Upload runs the model through its batcher (auto-tune, warm-up): the batch counters start where that left them.
    assert api.post(f"/v2/models/{MODEL}/versions/1/infer", json=add_body(1)).status_code == 200
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), [ScrapeTarget("flashml", server.url)]) as prom:
        seen = Scraped(prom)
        seen.before = prom.wait_for_scrape("flashml", after=time.time())
        for rows in ROWS:
            started = time.perf_counter()
            r = api.post(f"/v2/models/{MODEL}/versions/1/infer", json=add_body(rows))
            seen.slowest_s = max(seen.slowest_s, time.perf_counter() - started)
            assert r.status_code == 200, r.text
        for _ in range(BAD_REQUESTS):
            r = api.post(f"/v2/models/{MODEL}/versions/1/infer", json=bad_body())
            assert r.status_code == 400, r.text
        seen.after = prom.wait_for_scrape("flashml", after=time.time())
        api.close()
        yield seen


def test_without_the_binary_the_tests_fail_and_say_how_to_install_it(tmp_path: Path):
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install --no-install-recommends prometheus"):
        PrometheusServer(tmp_path, [], binary=tmp_path / "no-prometheus")


def test_prometheus_sees_flashml_up(scraped: Scraped):
    target = scraped.prom.target("flashml")
    assert target["health"] == "up" and target["lastError"] == "", target
    assert scraped.now('up{job="flashml"}') == 1


SEL = f'model="{MODEL}",version="1"'


def test_request_counts_agree_with_the_traffic(scraped: Scraped):
    # The recorder counts requests from the model's first one: the primer, then the traffic.
    assert scraped.prom.value(f"flashml_inference_request_success_total{{{SEL}}}", at=scraped.before) == 1
    assert scraped.now(f"flashml_inference_request_success_total{{{SEL}}}") == 1 + len(ROWS)
    assert scraped.now(f'flashml_inference_request_failure_total{{{SEL},reason="invalid"}}') == BAD_REQUESTS
    assert scraped.now(f"sum(flashml_inference_request_failure_total{{{SEL}}})") == BAD_REQUESTS


def test_batch_counts_agree_with_the_traffic(scraped: Scraped):
    assert scraped.sent(f"flashml_inference_count_total{{{SEL}}}") == sum(ROWS)
    # Sent one at a time, each request is a batch of its own: the average batch size is the rows per request.
    assert scraped.sent(f"flashml_inference_exec_count_total{{{SEL}}}") == len(ROWS)
    assert scraped.sent(f"flashml_inference_batch_size_sum{{{SEL}}}") == sum(ROWS)
    assert scraped.sent(f"flashml_inference_batch_size_count{{{SEL}}}") == len(ROWS)
    # The buckets hold the row counts sent: every batch had at most 5 rows, ROWS.count(1) had one.
    assert scraped.sent(f'flashml_inference_batch_size_bucket{{{SEL},le="5.0"}}') == len(ROWS)
    assert scraped.sent(f'flashml_inference_batch_size_bucket{{{SEL},le="1.0"}}') == ROWS.count(1)
    assert scraped.now(f"flashml_inference_pending_request_count{{{SEL}}}") == 0


def test_latency_histogram_agrees_with_the_traffic(scraped: Scraped):
    answered = scraped.now(f"flashml_inference_request_latency_seconds_count{{{SEL}}}")
    assert answered == 1 + len(ROWS)  # answered requests only: the 400s are failures, not latencies
    assert scraped.now(f'flashml_inference_request_latency_seconds_bucket{{{SEL},le="+Inf"}}') == answered
    sent_s = scraped.sent(f"flashml_inference_request_latency_seconds_sum{{{SEL}}}")
    assert 0 < sent_s <= scraped.slowest_s * len(ROWS)  # the server's time is inside the client's
    # The Grafana dashboard's p50/p99 are histogram_quantile over the buckets' rate; over the traffic's increase here.
    buckets = f"flashml_inference_request_latency_seconds_bucket{{{SEL}}}"
    window = f"{math.ceil(scraped.after - scraped.before) + 1}s"  # back to the scrape before the traffic, or earlier
    p50, p99 = (scraped.now(f"histogram_quantile({q}, sum by (le) (increase({buckets}[{window}])))")
                for q in (0.5, 0.99))
    bounds = sorted(float(s["metric"]["le"]) for s in scraped.prom.query(buckets, at=scraped.after))
    # The estimate interpolates inside a bucket: it may pass the slowest answer, never the bucket that holds it.
    ceiling = next(b for b in bounds if b >= scraped.slowest_s)
    assert 0 < p50 <= p99 <= ceiling, (p50, p99, scraped.slowest_s, bounds)


def test_queue_and_compute_times_agree_with_the_traffic(scraped: Scraped):
    request_us = scraped.sent(f"flashml_inference_request_duration_us_total{{{SEL}}}")
    compute_us = scraped.sent(f"flashml_inference_compute_infer_duration_us_total{{{SEL}}}")
    queue_us = scraped.sent(f"flashml_inference_queue_duration_us_total{{{SEL}}}")
    assert request_us == pytest.approx(1e6 * scraped.sent(f"flashml_inference_request_latency_seconds_sum{{{SEL}}}"))
    assert 0 < compute_us and 0 <= queue_us
    assert compute_us + queue_us <= request_us <= scraped.slowest_s * len(ROWS) * 1e6


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of packaging/grafana/flashml-dashboard.json, its variables set to this test's model."""
    board = json.loads((Path(__file__).resolve().parents[2] / "packaging/grafana/flashml-dashboard.json").read_text())
    values = {"$instance": ".*", "$model": MODEL, "$version": "1", "$__rate_interval": "1m"}
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


# Panels that must draw something after the traffic (the others need a GPU, drift, a cache, a refused key...).
DRAWN = {"Request throughput", "Errors by reason", "Latency p50 / p99", "Queue vs compute per request",
         "Average batch size", "Batch size distribution", "Loaded model memory", "Process CPU", "Process memory"}


def test_the_grafana_dashboards_queries_run_and_draw_the_traffic(scraped: Scraped):
    """Every query of the dashboard is PromQL this Prometheus accepts; those about traffic find the traffic."""
    queries = dashboard_queries()
    assert DRAWN <= {title for title, _ in queries}
    # rate() needs two samples of a series: the failure series began with the 400s, so one scrape more.
    at = scraped.prom.wait_for_scrape("flashml", after=scraped.after + 0.001)
    answers = [(title, expr, scraped.prom.query(expr, at=at)) for title, expr in queries]  # each one parses
    empty = [(title, expr) for title, expr, series in answers if title in DRAWN and not series]
    assert empty == [], empty
    throughput = scraped.prom.query(queries[0][1], at=at)
    assert [s["metric"] for s in throughput] == [{"model": MODEL, "version": "1"}]


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("keyed") / "data", *SERVER_FLAGS, "--metrics-access", "key").start()
    yield srv
    srv.stop()


def test_metrics_access_key_needs_the_credentials_file(keyed_server: ServerProcess, tmp_path: Path):
    """docs/observability.md's scrape config for metrics_access=key: a viewer key in a file Prometheus reads."""
    key_file = tmp_path / "flashml.key"
    key_file.write_text(keyed_server.create_key("prometheus", "viewer") + "\n")
    key_file.chmod(0o600)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    targets = [ScrapeTarget("with-key", keyed_server.url, key_file), ScrapeTarget("without-key", keyed_server.url)]
    with PrometheusServer(folder, targets) as prom:
        started = time.time()
        at = max(prom.wait_for_scrape(job, after=started) for job in ("with-key", "without-key"))
        with_key, without_key = prom.target("with-key"), prom.target("without-key")
        assert with_key["health"] == "up", with_key
        assert without_key["health"] == "down" and "401" in without_key["lastError"], without_key
        assert prom.value('up{job="with-key"}', at=at) == 1 and prom.value('up{job="without-key"}', at=at) == 0
        assert prom.value('count(process_resident_memory_bytes{job="with-key"})', at=at) == 1
