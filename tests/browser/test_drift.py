"""The Drift tab in a real browser: a version's scores over time drawn as a chart with the threshold line (24-hour
UTC, from zero, drawn again when htmx swaps the tab in), and the tab filled as a busy model fills it (three rounds,
an alert, a version still waiting, the form) at phone width with the keyboard."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import assert_usable_at_phone_width, sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

# No spaces or hyphens to break at: the worst case for a heading at 375 px. Named to sort after the jobs tests'
# adder on the shared server: the jobs form offers the first model by name, and this one takes other inputs.
MODEL = "watched_classifier_with_a_long_name_without_break_points_2026"
MONITOR = {"enabled": True, "reference_size": 20, "window_size": 20, "min_predictions": 20, "threshold": 0.2}
FEATURES = ["features[0]", "features[1]", "features[2]", "features[3]", "output"]


def _send(api: httpx.Client, version: int, requests: int, rng: np.random.Generator, shift: float = 0.0) -> None:
    for _ in range(requests):
        rows = rng.normal(0, 1, (20, 4))
        rows[:, 2] += shift
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [20, 4], "data": rows.ravel().tolist()}]}
        assert api.post(f"/v2/models/{MODEL}/versions/{version}/infer", json=body).status_code == 200


@pytest.fixture(scope="module")
def drifted(server, admin_key, tmp_path_factory) -> None:
    """v1 scored three times (calm, shifted, more shifted: an alert); v2 waiting for its reference."""
    path = onnx_models.tabular_classifier_model(tmp_path_factory.mktemp("drift-ui") / "classifier.onnx")
    rng = np.random.default_rng(9)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for _ in range(2):
            assert upload(api, MODEL, path).status_code == 201
        r = api.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True}, "drift": MONITOR})
        assert r.status_code == 200, r.text
        _send(api, 1, 40, rng)
        _send(api, 2, 5, rng)
        for shift in (0.0, 1.0, 2.5):
            _send(api, 1, 20, rng, shift)
            assert api.post(f"/api/v1/models/{MODEL}/drift/check").status_code == 200


def _chart(page, box: str, script: str):
    page.wait_for_selector(f"#{box} canvas")
    return page.evaluate(f"() => {{ const c = window.FlashMLCharts.byId['{box}']; return {script}; }}")


def test_scores_over_time_with_the_threshold_line(server, drifted, page):  # noqa: F811
    sign_in_as_new_user(page, server, "drift-chart-viewer", "viewer", f"/models/{MODEL}")
    page.get_by_role("link", name="Drift", exact=True).click()  # swapped in by htmx: the chart is drawn then
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=drift")
    box = "drift-chart-v1"
    assert _chart(page, box, "c.series.map(s => s.label)") == ["Round (UTC)", *FEATURES, "Threshold"]
    assert _chart(page, box, "c.data[0].length") == 3
    assert _chart(page, box, "c.data[c.data.length - 1]") == [0.2, 0.2, 0.2]  # the threshold, every round
    assert _chart(page, box, "c.series[c.series.length - 1].dash") == [8, 5]
    shifted = _chart(page, box, "c.data[3]")  # features[2]: below, then above the threshold
    assert shifted[0] < 0.2 < shifted[2]
    assert _chart(page, box, "c.scales.y.min") == 0
    assert _chart(page, box, "c.scales.y.max") >= max(shifted)
    assert _chart(page, box, "c.axes[0].values(c, [1767279900])") == ["15:05"]  # 24-hour UTC
    assert page.locator("#drift-alert-v1").is_visible()
    assert page.locator("#drift-waiting-v2").inner_text().startswith("v2 is not scored yet: the reference holds 5")
    page.shots("drift-tab")


def test_the_drift_tab_works_at_phone_width_with_the_keyboard(server, drifted, page):  # noqa: F811
    sign_in_as_new_user(page, server, "drift-phone-maintainer", "maintainer", f"/models/{MODEL}?tab=drift")
    page.wait_for_selector("#drift-chart-v1 canvas")
    assert_usable_at_phone_width(page, page.get_by_role("button", name="Save drift monitoring"))
    width = page.evaluate("() => document.querySelector('#drift-chart-v1 canvas').getBoundingClientRect().right")
    assert width <= 375
    page.shots("drift-tab-phone")
