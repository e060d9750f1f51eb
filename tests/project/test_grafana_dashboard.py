"""packaging/grafana/flashml-dashboard.json: every query names a metric FlashML exports, and Grafana can import it.

The names exported are read from a real FlashML's GET /metrics (the app in process, after an inference so the
per-model families have samples) plus the families that appear only with a GPU or a monitored version: every
collector registered on the app's registry declares its families (``describe()``), so a collector added later is
asked too. tests/e2e/test_prometheus_scrape.py runs the queries in a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.in_process import InProcessApp, publish_offset_versions
from tests.helpers.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "packaging" / "grafana" / "flashml-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# The samples each family type exposes (prometheus_client writes counters as <name>_total).
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count"), "info": ("_info",), "stateset": ("",), "unknown": ("",)}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # a collapsed row keeps its panels inside


def queries(board: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"\s*(?:label_values|query_result)\((.*)\)\s*", query, re.S)
            assert inner, f"variable {var['name']}: {query!r} is not label_values(...) or query_result(...)"
            selector = inner.group(1).rsplit(",", 1)[0] if query.lstrip().startswith("label_values") else \
                inner.group(1)
            yield f"variable {var['name']}", selector


def sample_names(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES[family.type]}


def declared_families(registry: CollectorRegistry) -> Iterator[Metric]:
    """The families every collector on ``registry`` declares, samples or not. prometheus_client keeps no public
    list of a registry's collectors; ``_collector_to_names`` is the one it registers them in (since 0.0.x)."""
    for collector in list(registry._collector_to_names):
        yield from getattr(collector, "describe", collector.collect)()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Sample names FlashML can export: a scrape after one inference, and the families its collectors declare."""
    folder = tmp_path_factory.mktemp("grafana")
    with InProcessApp(folder / "data") as app:
        app.call(publish_offset_versions, app.services.registry, folder, (0,), model="m")
        client = app.client(app.create_key("dashboard", "admin"))
        r = client.post("/v2/models/m/infer", json={"inputs": [
            {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
            {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
        assert r.status_code == 200, r.text
        scrape = client.get("/metrics")
        assert scrape.status_code == 200, scrape.text
        declared = {name for family in declared_families(app.services.metrics_registry)
                    for name in sample_names(family)}
    scraped = {s.name for family in text_string_to_metric_families(scrape.text) for s in family.samples}
    assert "flashml_inference_request_success_total" in scraped and "flashml_gpu_utilization" in declared
    return scraped | declared


def test_every_query_names_a_metric_flashml_exports(exported: set[str]):
    read = {where: metric_names(expr) for where, expr in queries(dashboard())}
    unknown = {where: sorted(set(found) - exported) for where, found in read.items() if set(found) - exported}
    assert unknown == {}, f"the dashboard reads metrics FlashML does not export: {unknown}"
    assert all(read.values()), f"queries that read no metric: {[w for w, found in read.items() if not found]}"


def test_the_dashboard_covers_what_the_issue_asks_for():
    """Throughput, errors, p50/p99 from the histogram, queue vs compute, batch size, cache, keys, memory, process,
    GPU and drift: each family is read by some panel."""
    read = {name for _, expr in queries(dashboard()) for name in metric_names(expr)}
    wanted = {"flashml_inference_request_success_total", "flashml_inference_request_failure_total",
              "flashml_inference_request_latency_seconds_bucket", "flashml_inference_queue_duration_us_total",
              "flashml_inference_compute_infer_duration_us_total", "flashml_inference_count_total",
              "flashml_inference_exec_count_total", "flashml_inference_batch_size_bucket",
              "flashml_cache_num_hits_per_model_total", "flashml_key_refusals_total", "flashml_model_memory_bytes",
              "process_cpu_seconds_total", "process_resident_memory_bytes", "flashml_gpu_utilization",
              "flashml_gpu_memory_used_bytes", "flashml_gpu_power_usage", "flashml_drift_score",
              "flashml_drift_threshold"}
    assert wanted - read == set()
    exprs = [expr for _, expr in queries(dashboard())]
    for q in ("0.5", "0.99"):
        assert any(re.search(rf"histogram_quantile\({q}, .*rate\(flashml_inference_request_latency_seconds_bucket",
                             e) for e in exprs), f"no p{q[2:]} from the latency histogram's rate"


def test_the_dashboard_is_well_formed():
    board = dashboard()
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 39  # Grafana 11 and newer
    assert board["uid"] and board["title"]
    panels = list(all_panels(board["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for p in panels:
        grid = p["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["w"] > 0 and grid["h"] > 0, p["title"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, f"{p['title']} overflows Grafana's 24 columns"
        if p["type"] != "row":
            assert p["datasource"] == DATASOURCE, p["title"]
            assert p["targets"] and all(t["datasource"] == DATASOURCE and t["expr"] for t in p["targets"]), p["title"]
            ref_ids = [t["refId"] for t in p["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), p["title"]
    cells = [(x, y) for p in panels for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells)), "panels overlap"


def test_the_datasource_and_the_model_and_version_variables():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    source = variables["DS_PROMETHEUS"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    for name in ("model", "version"):
        var = variables[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["query"]["query"].startswith("label_values(") and var["query"]["query"].endswith(f", {name})")
    # Every panel filters by them, so the variables mean something (process and GPU panels are per instance).
    for where, expr in queries(dashboard()):
        if where.startswith("panel") and re.search(r"\{[^}]*\bmodel=", expr):
            assert 'model=~"$model"' in expr, where


@pytest.mark.parametrize("expr,names", [
    ('sum by (model) (rate(flashml_a_total{model=~"$model", flashml_label="flashml_fake"}[$__rate_interval]))',
     ["flashml_a_total"]),
    ("histogram_quantile(0.99, sum(rate(x_bucket[5m] offset 1h)) by (le))", ["x_bucket"]),
    ("a / on (instance) group_left (flashml_label) b * 1e6 > bool 0.5", ["a", "b"]),
    ('{__name__="process_cpu_seconds_total", job="j"} and count without (flashml_gpu) (up @ start())',
     ["process_cpu_seconds_total", "up"]),
    ("rate(flashml_b_total[5m:30s]) unless 'flashml_not_a_metric'", ["flashml_b_total"]),
])
def test_metric_names_reads_promql_not_a_pattern(expr, names):
    assert metric_names(expr) == names
