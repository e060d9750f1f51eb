"""The dashboard's Monitoring panel: it links to GET /metrics (saying who may read it under the server's
metrics_access), to the JSON metrics and to a model's Predictions and Drift tabs, and names the Grafana dashboard
and the docs page, which exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.console import sign_in
from tests.helpers.in_process import InProcessApp, publish_offset_versions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["loopback", "key", "open"])
def app(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with InProcessApp(tmp_path_factory.mktemp(f"monitoring-{request.param}") / "data",
                      metrics_access=request.param) as running:
        yield running


def panel(html: str) -> str:
    found = re.search(r'<section aria-labelledby="monitoring-title" id="dash-monitoring">(.*?)</section>', html, re.S)
    assert found, "the dashboard has no Monitoring panel"
    return found.group(1)


def test_the_panel_says_who_may_read_metrics(app: InProcessApp):
    client = app.client()
    sign_in(client, app.app, "monitoring-viewer", "viewer")
    text = " ".join(panel(client.get("/").text).split())
    mode = app.settings.metrics_access
    assert f"now <code>{mode}</code>" in text
    said = {"loopback": "anyone on this machine; from elsewhere, a viewer API key",
            "key": "a viewer API key or stronger (Authorization: Bearer), from anywhere",
            "open": "anyone who can reach this server, without a key"}[mode]
    assert said in text


def test_the_panels_links_answer_and_its_files_exist(app: InProcessApp):
    client = app.client()
    sign_in(client, app.app, "monitoring-viewer", "viewer")
    html = panel(client.get("/").text)
    assert re.findall(r'href="([^"]+)"', html) == ["/metrics", "/api/v1/metrics", "/models"]
    assert client.get("/api/v1/metrics").status_code == 200  # the session reads the JSON metrics
    scrape = app.client(app.create_key("monitoring-prometheus", "viewer")).get("/metrics")
    assert scrape.status_code == 200 and "flashml_" in scrape.text  # what a viewer key reads in every mode
    for path in re.findall(r"<code>((?:packaging|docs)/[^<]+)</code>", html):
        assert (ROOT / path).is_file(), f"the panel names {path}, which is not in the repository"
    assert "docs/observability.md" in html and "packaging/grafana/flashml-dashboard.json" in html


def test_with_a_model_chosen_the_panel_links_its_predictions_and_drift(app: InProcessApp, tmp_path: Path):
    if "watched" not in {m.name for m in app.call(app.services.registry.list_models)}:
        app.call(publish_offset_versions, app.services.registry, tmp_path, (0,), model="watched")
    client = app.client()
    sign_in(client, app.app, "monitoring-viewer", "viewer")
    links = re.findall(r'href="([^"]+)"', panel(client.get("/?model=watched").text))
    assert links[2:] == ["/models/watched?tab=predictions", "/models/watched?tab=drift"]
    for link, tab in zip(links[2:], ("predictions", "drift"), strict=True):
        page = client.get(link)
        assert page.status_code == 200, link
        assert re.search(rf'id="tab-{tab}"[^>]*aria-current="page"', page.text, re.S), f"{link} opens another tab"
