"""No answer or page shows Python's internals or hand-made grammar (issue 24, item 8): a few representative flows
(uploads that pass and fail, predictions with bad input, every console page a model touches) are read whole and
searched for object reprs ("<_io.", "object at 0x"), tracebacks, and "a" before a vowel ("a image")."""

from __future__ import annotations

import json
from contextlib import closing

import httpx
import pytest

from tests.helpers.console import sign_in
from tests.helpers.plain_text import internal_text, publish_image_classifier, refuse_custom_operators
from tests.helpers.tasks import png

CLASSIFIER = "guard-cls"
REFUSED = "guard-custom-op"


@pytest.fixture(scope="module")
def seen(app, tmp_path_factory) -> dict[str, httpx.Response]:
    """Every answer and page the flows produced, by what produced it."""
    folder = tmp_path_factory.mktemp("guard")
    out: dict[str, httpx.Response] = {}
    api = app.client(app.create_key("guard admin", "admin"))
    console = app.client()
    token = sign_in(console, app.app, "guard-admin", "admin")
    with closing(api), closing(console):
        out["refused upload"] = refuse_custom_operators(api, folder, REFUSED)
        publish_image_classifier(api, folder, CLASSIFIER)
        predict = f"/v1/models/{CLASSIFIER}/predict"
        out["predict: not an image"] = api.post(predict, content=b"plain words", headers={"Content-Type": "image/png"})
        out["predict: cut short"] = api.post(predict, content=png(30, 30, 1)[:60],
                                             headers={"Content-Type": "image/png"})
        out["predict: texts to an image model"] = api.post(predict, json={"texts": ["hello"]})
        out["infer: bad tensors"] = api.post(f"/v2/models/{CLASSIFIER}/infer", json={"inputs": [{"name": "x"}]})
        out["production alias"] = api.put(f"/api/v1/models/{CLASSIFIER}/aliases/production",
                                       json={"versions": {"1": 100}})
        for path in ("/api/v1/models", f"/api/v1/models/{REFUSED}/versions/1", "/api/v1/audit", "/api/v1/metrics",
                     "/api/v1/me"):
            out[path] = api.get(path)
        pages = ["/", "/dashboard/live", "/models", f"/models/{CLASSIFIER}", f"/models/{REFUSED}",
                 f"/models/{CLASSIFIER}/playground", "/upload", "/audit", "/keys", "/jobs", "/users"]
        for path in pages:
            out[f"page {path}"] = console.get(path)
        htmx = {"X-CSRF-Token": token, "HX-Request": "true"}
        out["playground: not an image"] = console.post(
            f"/models/{CLASSIFIER}/playground/predict", headers=htmx,
            files={"image": ("photo.png", b"plain words", "image/png")})
        out["playground: texts to an image model"] = console.post(
            f"/models/{CLASSIFIER}/playground/predict", headers=htmx, data={"texts": "hello"})
        out["playground: bad V2 body"] = console.post(f"/models/{CLASSIFIER}/playground", headers=htmx,
                                                      data={"body": json.dumps({"inputs": [{"name": "x"}]})})
    return out


def test_the_flows_ran(seen):
    """The guard below reads real answers: the refusals refused and every page rendered."""
    assert seen["predict: not an image"].status_code == 415
    assert seen["predict: texts to an image model"].status_code == 400
    assert seen["production alias"].status_code == 200
    pages = {name: r.status_code for name, r in seen.items() if name.startswith(("page ", "playground"))}
    assert set(pages.values()) == {200}, pages


def test_no_answer_or_page_shows_internal_text(seen):
    found = {name: internal_text(r.text) for name, r in seen.items()}
    assert {name: markers for name, markers in found.items() if markers} == {}
