"""The model page's Predictions tab, in process: the form (CSRF, roles, the API's rules), what the log keeps, the
newest predictions as summaries only, and the downloads through the console's session."""

from __future__ import annotations

import html
import re
from contextlib import closing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import login_token
from tests.helpers.uploads import upload

MODEL = "ui-logged"
SECRET = 7301.25  # an input value that must never appear on the page


@pytest.fixture(scope="module")
def api(app, tmp_path_factory):
    path = onnx_models.add_model(tmp_path_factory.mktemp("ui-log") / "add.onnx")
    with closing(app.client(app.create_key("log tab admin", "admin"))) as client:
        assert upload(client, MODEL, path).status_code == 201
        yield client


def _signed_in(app, name: str, role: str):
    app.create_user(name, "ui prediction log password 1", role)
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": "ui prediction log password 1",
                                    "next": "/models"})
    assert r.status_code == 303, r.text
    page = client.get(f"/models/{MODEL}?tab=predictions")
    assert page.status_code == 200, page.text
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


FORM = {"enabled": "on", "sample_rate": "1", "mode": "full", "retention_s": "3600", "max_bytes": "1000000"}


def test_switch_on_from_the_tab_then_see_summaries_and_download(app, api):
    client, token = _signed_in(app, "log-maintainer", "maintainer")
    with closing(client):
        page = client.get(f"/models/{MODEL}?tab=predictions")
        assert 'id="tab-predictions"' in page.text and "Off: no request is logged." in page.text
        assert client.post(f"/models/{MODEL}/prediction-log", data=FORM).status_code == 403  # no CSRF token
        r = client.post(f"/models/{MODEL}/prediction-log", data={**FORM, "csrf_token": token, "redact_inputs": "on"})
        assert r.status_code == 303 and r.headers["location"] == f"/models/{MODEL}?done=prediction_log"
        tensors = [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [SECRET, 1, 2, 3]} for n in ("a", "b")]
        assert api.post(f"/v2/models/{MODEL}/infer", json={"inputs": tensors}).status_code == 200
        page = client.get(r.headers["location"])
        assert "Prediction log setting saved." in page.text and 'aria-current="page">Predictions' in page.text
        assert "On: 100% of requests are logged with their outputs and summaries of their inputs" in page.text
        assert "1 prediction kept" in page.text
        assert "a: FP32 [1, 4], means 7301, 1, 2, 3" in page.text  # rounded means, never the raw row
        assert str(SECRET) not in page.text
        parquet = client.get(f"/api/v1/models/{MODEL}/predictions?format=parquet")  # the download link, by cookie
        assert parquet.status_code == 200
        table = pq.read_table(pa.BufferReader(parquet.content))
        assert table.num_rows == 1 and "input.a" not in table.column_names  # redacted: no raw inputs at all
        assert table.column("output.sum").to_pylist() == [[[2 * SECRET, 2, 4, 6]]]


@pytest.mark.parametrize("field,value,words", [
    ("sample_rate", "2", '"sample_rate" is the share of requests logged'),
    ("sample_rate", "lots", '"sample_rate" is the share of requests logged'),
    ("retention_s", str(10**12), '"retention_s" is at most'),
    ("mode", "everything", '"mode" is "full"'),
])
def test_a_refused_setting_shows_the_tab_again_with_the_values_typed(app, api, field, value, words):
    client, token = _signed_in(app, f"log-typo-{field}-{len(value)}", "maintainer")
    with closing(client):
        before = api.get(f"/api/v1/models/{MODEL}").json()["prediction_log"]
        r = client.post(f"/models/{MODEL}/prediction-log", data={**FORM, field: value, "csrf_token": token})
        text = html.unescape(r.text)
        assert r.status_code == 400 and "Not saved: " in text and words in text, text
        if field != "mode":  # a select shows its own choices, not what was sent
            assert f'value="{value}"' in text
        assert api.get(f"/api/v1/models/{MODEL}").json()["prediction_log"] == before


def test_a_viewer_reads_the_tab_but_has_no_form(app, api):
    client, token = _signed_in(app, "log-viewer", "viewer")
    with closing(client):
        page = client.get(f"/models/{MODEL}?tab=predictions")
        assert 'id="prediction-log-form"' not in page.text and 'id="download-jsonl"' in page.text
        r = client.post(f"/models/{MODEL}/prediction-log", data={**FORM, "csrf_token": token})
        assert r.status_code == 403
