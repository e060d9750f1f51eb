"""The models pages, in process: sign-in redirects, CSRF and roles on every change."""

from __future__ import annotations

import re
from contextlib import closing

import pytest

from flashml.console.model_page import python_snippet
from tests.helpers import onnx_models
from tests.helpers.server_process import login_token
from tests.helpers.uploads import upload


@pytest.fixture(scope="module")
def ui_model(app, tmp_path_factory) -> str:
    path = onnx_models.add_model(tmp_path_factory.mktemp("ui-models") / "add.onnx")
    with closing(app.client(app.create_key("e2e admin", "admin"))) as api:
        r = upload(api, "ui-http-add", path)
        assert r.status_code == 201, r.text
    return "ui-http-add"


def _signed_in(app, name: str, role: str):
    app.create_user(name, "ui models password 1", role)
    client = app.client()
    r = client.post("/login", data={**login_token(client),
                                    "name": name, "password": "ui models password 1", "next": "/models"})
    assert r.status_code == 303, r.text
    page = client.get("/models")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client, token


def test_pages_redirect_to_sign_in(app, ui_model):
    with closing(app.client()) as anon:
        r = anon.get("/models?q=add")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login?next=%2Fmodels%3Fq%3Dadd"
        r = anon.get(f"/models/{ui_model}")
        assert r.status_code in (302, 303) and r.headers["location"] == f"/login?next=%2Fmodels%2F{ui_model}"
        r = anon.post(f"/models/{ui_model}/versions/1/archive", data={"csrf_token": "x"})
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login?next=")


def test_list_page_and_htmx_partial(app, ui_model):
    client, _ = _signed_in(app, "ui-http-viewer", "viewer")
    with closing(client):
        full = client.get("/models", params={"q": "ui-http"})
        assert full.status_code == 200 and ui_model in full.text and "<html" in full.text
        assert "hx-get" in full.text
        partial = client.get("/models", params={"q": "no-such-model"}, headers={"HX-Request": "true"})
        assert partial.status_code == 200 and "<html" not in partial.text and ui_model not in partial.text
        assert "No model name contains" in partial.text
        page = client.get(f"/models/{ui_model}")
        assert page.status_code == 200 and 'id="perf-data"' in page.text and 'id="config-form"' not in page.text
        assert client.get("/models/not-a-model").status_code == 404


def test_posts_need_the_csrf_token_and_the_role(app, ui_model):
    client, token = _signed_in(app, "ui-http-maintainer", "maintainer")
    with closing(client):
        url = f"/models/{ui_model}/versions/1/config"
        missing = client.post(url, data={"max_batch_size": "4"})
        assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
        wrong = client.post(url, data={"max_batch_size": "4", "csrf_token": "wrong"})
        assert wrong.status_code == 403
        bad = client.post(url, data={"max_batch_size": "four", "csrf_token": token})
        assert bad.status_code == 400 and "max_batch_size must be a whole number" in bad.text
        ok = client.post(url, data={"max_batch_size": "4", "max_queue_delay_us": "100", "csrf_token": token})
        assert ok.status_code == 303 and ok.headers["location"] == f"/models/{ui_model}?done=config"
        # Archiving asks first (issue 24): the confirm page, then the same POST with confirm=yes.
        asked = client.post(f"/models/{ui_model}/versions/1/archive", headers={"X-CSRF-Token": token})
        assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
        header = client.post(f"/models/{ui_model}/versions/1/archive", headers={"X-CSRF-Token": token},
                             data={"confirm": "yes"})
        assert header.status_code == 303
        again = client.post(f"/models/{ui_model}/versions/1/restore", data={"csrf_token": token})
        assert again.status_code == 303
    viewer, viewer_token = _signed_in(app, "ui-http-viewer2", "viewer")
    with closing(viewer):
        refused = viewer.post(f"/models/{ui_model}/versions/1/archive", data={"csrf_token": viewer_token})
        assert refused.status_code == 403 and refused.json()["code"] == "role_forbidden"


def test_the_python_snippet_speaks_tls_to_an_https_server():
    signature = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 4]}], "outputs": []}
    assert 'InferenceServerClient(url="flashml.lan:8443", ssl=True)' in python_snippet(
        "https://flashml.lan:8443", "m", signature)
    assert 'InferenceServerClient(url="127.0.0.1:8000")' in python_snippet("http://127.0.0.1:8000", "m", signature)
