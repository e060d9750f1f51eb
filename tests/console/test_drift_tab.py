"""The model page's Drift tab, in process: the form (CSRF, roles, the API's rules, values kept on a refusal), why a
version is not scored yet, and after a check a chart's data with the threshold and the newest scores as a table."""

from __future__ import annotations

import html
import json
import re
from contextlib import closing

import numpy as np
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import login_token
from tests.helpers.uploads import upload

MODEL = "ui-drift"
PASSWORD = "ui drift password 1"
FORM = {"enabled": "on", "reference": "first", "reference_dataset": "", "reference_size": "10", "window_size": "10",
        "window_s": "", "min_predictions": "10", "threshold": "0.2", "rollback": "on"}


@pytest.fixture(scope="module")
def api(app, tmp_path_factory):
    path = onnx_models.tabular_classifier_model(tmp_path_factory.mktemp("ui-drift") / "classifier.onnx")
    with closing(app.client(app.create_key("drift tab admin", "admin"))) as client:
        assert upload(client, MODEL, path).status_code == 201
        assert client.patch(f"/api/v1/models/{MODEL}", json={"prediction_log": {"enabled": True}}).status_code == 200
        yield client


def _signed_in(app, name: str, role: str):
    app.create_user(name, PASSWORD, role)
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": PASSWORD, "next": "/models"})
    assert r.status_code == 303, r.text
    page = client.get(f"/models/{MODEL}?tab=drift")
    assert page.status_code == 200, page.text
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _send(api, rng, requests: int, shift: float = 0.0) -> None:
    for _ in range(requests):
        rows = rng.normal(0, 1, (20, 4))
        rows[:, 2] += shift
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [20, 4], "data": rows.ravel().tolist()}]}
        assert api.post(f"/v2/models/{MODEL}/infer", json=body).status_code == 200


def test_switch_on_from_the_tab_check_and_see_the_scores(app, api):
    client, token = _signed_in(app, "drift-maintainer", "maintainer")
    with closing(client):
        page = client.get(f"/models/{MODEL}?tab=drift")
        assert 'aria-current="page">Drift' in page.text and "Off: no version is scored." in page.text
        assert "No version has drift scores yet." in page.text
        r = client.post(f"/models/{MODEL}/drift/check", data={"csrf_token": token})
        assert r.headers["location"] == f"/models/{MODEL}?done=drift_off"
        assert "drift monitoring is off for this model" in client.get(r.headers["location"]).text
        assert client.post(f"/models/{MODEL}/drift", data=FORM).status_code == 403  # no CSRF token
        r = client.post(f"/models/{MODEL}/drift", data={**FORM, "csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == f"/models/{MODEL}?done=drift"
        page = html.unescape(client.get(r.headers["location"]).text)
        assert "Drift monitoring saved." in page and "compared with its first 10 logged predictions" in page
        r = client.post(f"/models/{MODEL}/drift/check", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == f"/models/{MODEL}?done=drift_check"
        page = html.unescape(client.get(r.headers["location"]).text)
        assert "v1 is not scored yet: the reference holds 0 of the first 10 logged predictions it needs." in page
        rng = np.random.default_rng(4)
        _send(api, rng, 10)
        _send(api, rng, 10, shift=2.0)
        assert client.post(f"/models/{MODEL}/drift/check", data={"csrf_token": token}).status_code == 303
        page = client.get(f"/models/{MODEL}?tab=drift").text
    assert 'id="drift-alert-v1"' in page and "not scored yet" not in page
    chart = json.loads(html.unescape(re.search(r'id="drift-data-v1">(.*?)</script>', page, re.S).group(1)))
    assert chart["threshold"] == 0.2 and len(chart["t"]) == 1
    labels = [s["label"] for s in chart["series"]]
    assert labels == ["features[0]", "features[1]", "features[2]", "features[3]", "output"]
    assert chart["series"][2]["scores"][0] > 0.2
    rows = re.findall(r'<tr( class="above")?><td><code>([^<]+)</code>', page)
    assert [name for above, name in rows if above] == ["features[2]"]
    assert 'data-source="drift-data-v1"' in page and "/static/drift_chart.js" in page


@pytest.mark.parametrize("field,value,words", [
    ("threshold", "0", '"threshold" is a drift score (PSI) above 0'),
    ("threshold", "high", '"threshold" is a drift score (PSI) above 0'),
    ("window_size", "5", '"window_size" is a whole number from 10 to 100000'),
    ("reference", "dataset", 'A "dataset" reference needs "reference_dataset"'),
])
def test_a_refused_setting_shows_the_tab_again_with_the_values_typed(app, api, field, value, words):
    client, token = _signed_in(app, f"drift-typo-{field}-{len(value)}", "maintainer")
    with closing(client):
        before = client.get(f"/api/v1/models/{MODEL}/drift").json()["config"]
        r = client.post(f"/models/{MODEL}/drift", data={**FORM, field: value, "csrf_token": token})
        text = html.unescape(r.text)
        assert r.status_code == 400 and "Not saved: " in text and words in text, text
        if field != "reference":  # a select shows its own choices, not what was sent
            assert f'value="{value}"' in text
        assert client.get(f"/api/v1/models/{MODEL}/drift").json()["config"] == before


def test_a_viewer_reads_the_tab_without_the_forms(app, api):
    client, token = _signed_in(app, "drift-viewer", "viewer")
    with closing(client):
        page = client.get(f"/models/{MODEL}?tab=drift").text
        assert 'id="drift-form"' not in page and 'id="drift-check-form"' not in page
        assert "a maintainer or admin can change the monitoring" in page
        assert client.post(f"/models/{MODEL}/drift/check", data={"csrf_token": token}).status_code == 403
