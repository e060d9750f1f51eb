"""The console's charts (issue 24, item 9): times as the console writes them everywhere else (24-hour, UTC), p99 as
a line, value axes from zero, charts drawn again when htmx swaps a model page's tab in; and the favicon."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "charts-add"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
# 15:05 UTC on 1 January 2026: uPlot's own labels would say 3pm (and the browser's zone, not UTC).
AFTERNOON = 1767279900


@pytest.fixture(scope="module")
def charts_model(server, admin_key, tmp_path_factory) -> str:
    path = onnx_models.add_model(tmp_path_factory.mktemp("charts") / "add.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        assert upload(api, MODEL, path).status_code == 201
        for _ in range(3):
            assert api.post(f"/v2/models/{MODEL}/infer", json=BODY).status_code == 200
    return MODEL


def _chart(page, box: str, script: str):
    """``script`` run on the uPlot chart drawn in #box (charts.js keeps them by their box's id) as ``c``."""
    page.wait_for_selector(f"#{box} canvas")
    return page.evaluate(f"() => {{ const c = window.FlashMLCharts.byId['{box}']; return {script}; }}")


def test_the_dashboard_chart_speaks_24_hour_utc_and_draws_p99_as_a_line(server, charts_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "charts-viewer", "viewer", f"/?model={MODEL}")
    assert _chart(page, "dash-chart", f"c.axes[0].values(c, [{AFTERNOON}])") == ["15:05"]
    assert _chart(page, "dash-chart", f"c.series[0].value(c, {AFTERNOON})") == "15:05"
    assert _chart(page, "dash-chart", "c.series.map(s => s.label)")[3] == "p99 (ms)"
    assert _chart(page, "dash-chart", "c.series[3].spanGaps && c.series[2].spanGaps") is True
    assert _chart(page, "dash-chart", "[c.scales.rps.min, c.scales.ms.min]") == [0, 0]
    page.shots("dashboard-chart")


def test_the_performance_card_axes_start_at_zero(server, charts_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "charts-perf", "viewer", f"/models/{MODEL}")
    latencies = _chart(page, "perf-chart", "c.data[1]")
    assert _chart(page, "perf-chart", "[c.scales.ms.min, c.scales.rps.min]") == [0, 0]
    assert _chart(page, "perf-chart", "c.scales.ms.max") >= max(latencies)
    # A tab swapped in by htmx draws its charts too: Versions, then back to the overview's card.
    page.get_by_role("link", name="Versions", exact=True).click()
    page.wait_for_selector("#version-1")
    page.get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=overview")
    assert _chart(page, "perf-chart", "c.scales.ms.min") == 0
    page.shots("perf-chart")


def test_every_page_has_our_favicon(server, page):  # noqa: F811
    page.goto(server.url + "/login")
    href = page.get_attribute("link[rel=icon]", "href")
    assert href == "/static/favicon.svg"
    icon = page.request.get(server.url + href)
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.body()
