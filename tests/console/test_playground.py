"""The playground, in process: sign-in redirects, the CSRF token, the full page and the htmx partial."""

from __future__ import annotations

import json
import re
from contextlib import closing

import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import login_token
from tests.helpers.uploads import upload

MODEL = "ui-play-add"


@pytest.fixture(scope="module")
def ui_model(app, tmp_path_factory) -> str:
    path = onnx_models.add_model(tmp_path_factory.mktemp("ui-playground") / "add.onnx")
    with closing(app.client(app.create_key("e2e admin", "admin"))) as api:
        r = upload(api, MODEL, path)
        assert r.status_code == 201, r.text
    return MODEL


def _signed_in(app, name: str, role: str):
    app.create_user(name, "ui playground password 1", role)
    client = app.client()
    r = client.post("/login", data={**login_token(client),
                                    "name": name, "password": "ui playground password 1", "next": "/models"})
    assert r.status_code == 303, r.text
    page = client.get(f"/models/{MODEL}/playground")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client, token


def test_not_signed_in_goes_to_sign_in(app, ui_model):
    with closing(app.client()) as anon:
        r = anon.get(f"/models/{ui_model}/playground", params={"version": "1"})
        assert r.status_code in (302, 303)
        assert r.headers["location"] == f"/login?next=%2Fmodels%2F{ui_model}%2Fplayground%3Fversion%3D1"
        r = anon.post(f"/models/{ui_model}/playground", data={"csrf_token": "x", "body": "{}"})
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login?next=")


def test_run_needs_the_csrf_token(app, ui_model):
    client, token = _signed_in(app, "ui-play-viewer", "viewer")
    with closing(client):
        page = client.get(f"/models/{ui_model}/playground")
        assert "<textarea" in page.text and "Run" in page.text
        body = json.dumps({"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                                      {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]})
        missing = client.post(f"/models/{ui_model}/playground", data={"body": body})
        assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
        wrong = client.post(f"/models/{ui_model}/playground", data={"body": body, "csrf_token": "wrong"})
        assert wrong.status_code == 403
        partial = client.post(f"/models/{ui_model}/playground", data={"body": body},
                              headers={"X-CSRF-Token": token, "HX-Request": "true"})
        assert partial.status_code == 200 and "<html" not in partial.text
        assert "[2.0, 3.0, 4.0, 5.0]" in partial.text and 'id="latency"' in partial.text
        full = client.post(f"/models/{ui_model}/playground", data={"body": "not json", "csrf_token": token})
        assert full.status_code == 400 and "<html" in full.text and "not json</textarea>" in full.text
        assert client.get(f"/models/{ui_model}/playground", params={"version": "9"}).status_code == 404
        assert client.get("/models/no-such-model/playground").status_code == 404
