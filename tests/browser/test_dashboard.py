"""The dashboard in a real browser: empty state, then traffic fills the tiles, the chart and the tables."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "dash-add"
GOOD = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
BAD = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}


@pytest.fixture(scope="module")
def dash_model(server, admin_key, tmp_path_factory) -> str:
    path = onnx_models.add_model(tmp_path_factory.mktemp("dash") / "add.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        assert upload(api, MODEL, path).status_code == 201
    return MODEL


def test_dashboard_shows_traffic_and_what_runs_where(server, api, dash_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "dash-viewer", "viewer", "/")
    assert page.get_attribute("a[aria-current=page]", "href") == "/"
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    page.shots("landing")

    # One model, no traffic yet: the empty state, no chart.
    page.get_by_label("Model", exact=True).select_option(MODEL)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{server.url}/?model={MODEL}")
    assert page.is_visible("#dash-empty") and not page.is_visible("#dash-figure")
    assert "0.0 %" in page.inner_text("#tile-errors")
    assert f"{MODEL} v1" in page.inner_text("#dash-where")
    page.shots("empty")

    for body in (GOOD,) * 5 + (BAD,) * 2:
        api.post(f"/v2/models/{MODEL}/infer", json=body)
    # The live part refreshes itself (htmx, every 10 s): no reload.
    page.wait_for_function("document.querySelector('#tile-rps').textContent.includes('7 requests')",
                           timeout=30_000)
    assert not page.is_visible("#dash-empty")
    assert "2 4xx, 0 5xx" in page.inner_text("#tile-errors") and "28.6 %" in page.inner_text("#tile-errors")
    assert "ms" in page.inner_text("#tile-p50") and "ms" in page.inner_text("#tile-p99")
    page.wait_for_selector("#dash-chart canvas")  # uPlot drew the last hour
    assert page.is_visible("#dash-figure")
    models_row = page.locator("#dash-models tbody tr", has_text=MODEL)
    assert "v1 ready" in models_row.inner_text() and "7" in models_row.inner_text()
    where = page.locator("#dash-where tbody tr", has_text=MODEL).inner_text()
    assert "cpu" in where and "CPU" in where and "MiB" in where
    page.get_by_text("The chart's numbers, per minute").click()  # the chart as a table, for screen readers
    assert "7" in page.inner_text("#dash-minutes tbody")
    api.post(f"/v2/models/{MODEL}/infer", json=GOOD)  # the next refresh keeps the table open
    page.wait_for_function("document.querySelector('#tile-rps').textContent.includes('8 requests')",
                           timeout=30_000)
    assert page.is_visible("#dash-minutes tbody")
    assert "MiB" in page.inner_text("#dash-process") and "cpu" in page.inner_text("#dash-process")
    page.shots("traffic")

    # All models again, at phone width: nothing wider than the screen, the tables scroll inside their boxes.
    page.get_by_label("Model", exact=True).select_option("")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("#dash-chart canvas")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # the chart follows the resize
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.shots("phone")

    # Keyboard: the first Tab stops are the brand and the nav, then the page's own controls.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/"


def test_signed_out_visitors_go_to_login(server, page):  # noqa: F811
    page.goto(server.url + "/")
    assert page.url.endswith("/login")


def test_an_ended_session_sends_the_open_dashboard_to_sign_in(server, page):  # noqa: F811
    sign_in_as_new_user(page, server, "dash-leaver", "viewer", "/")
    page.context.clear_cookies()  # as when the session ends (12 hours unused, or signed out elsewhere)
    page.wait_for_url(f"{server.url}/login?next=%2F", timeout=30_000)  # the next refresh goes to sign-in
    assert page.get_by_label("User name").is_visible()
