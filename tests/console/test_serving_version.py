"""Which version serves, said the same way everywhere: the models list (API and console), the dashboard and
GET /api/v1/metrics read the registry's one resolution (the production alias, else the newest ready version), and
a call without a version is answered by the version they name."""

from __future__ import annotations

import re
from contextlib import closing

import pytest

from tests.helpers.console import sign_in
from tests.helpers.in_process import publish_offset_versions

MODEL = "serving-check"
INFER = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                    {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]}]}


@pytest.fixture(scope="module")
def two_versions(app, tmp_path_factory) -> str:
    """v1 answers a + b, v2 a + b + 100: the answer says which one ran."""
    app.call(publish_offset_versions, app.services.registry, tmp_path_factory.mktemp("serving"), model=MODEL)
    return MODEL


def _serving_cell(html: str, row_start: str) -> str:
    """The text of the Serving cell in the table row that starts with the model's link."""
    row = html[html.index(row_start):]
    cell = re.search(r'<td class="serving">(.*?)</td>', row, re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell).strip()


def _model_page_says(console) -> str:
    """The model page's own sentence about what answers a call without a version."""
    html = console.get(f"/models/{MODEL}").text
    text = re.sub(r"<[^>]+>", "", re.search(r'<span id="served">(.*?)</span>', html, re.S).group(1))
    return re.sub(r"\s+", " ", text).strip()


def _everywhere(client, console) -> dict[str, object]:
    """What each place says serves the model, and which version answered a call without a version."""
    summary = next(m for m in client.get("/api/v1/models").json() if m["name"] == MODEL)
    metrics = next(m for m in client.get("/api/v1/metrics").json()["models"] if m["model"] == MODEL)
    answer = client.post(f"/v2/models/{MODEL}/infer", json=INFER)
    assert answer.status_code == 200, answer.text
    link = f'<a href="/models/{MODEL}">'
    detail = client.get(f"/api/v1/models/{MODEL}").json()
    return {"api list": summary["serving"]["versions"], "api detail": detail["serving"]["versions"],
            "metrics": metrics["serving"]["versions"], "metrics version": metrics["serving_version"],
            "answered by": answer.headers["FlashML-Model-Version"],
            "first output": answer.json()["outputs"][0]["data"][0],
            "models page": _serving_cell(console.get("/models").text, link),
            "dashboard": _serving_cell(console.get("/").text, link),
            "dashboard live": _serving_cell(console.get("/dashboard/live", headers={"HX-Request": "true"}).text, link)}


def test_every_place_names_the_version_that_answers(app, two_versions):
    admin = app.client(app.create_key("serving admin", "admin"))
    console = app.client()
    sign_in(console, app.app, "serving-viewer", "viewer")
    with closing(admin), closing(console):
        said = _everywhere(admin, console)
        assert said == {"api list": {"2": 100}, "api detail": {"2": 100}, "metrics": {"2": 100},
                        "metrics version": 2, "answered by": "2", "first output": 101.0,
                        "models page": "v2", "dashboard": "v2", "dashboard live": "v2"}
        assert _model_page_says(console).startswith("Version 2, the newest ready one, answers")

        r = admin.put(f"/api/v1/models/{MODEL}/aliases/production", json={"version": 1})
        assert r.status_code == 200, r.text
        said = _everywhere(admin, console)
        assert said == {"api list": {"1": 100}, "api detail": {"1": 100}, "metrics": {"1": 100},
                        "metrics version": 1, "answered by": "1", "first output": 1.0,
                        "models page": "v1 (production)", "dashboard": "v1 (production)",
                        "dashboard live": "v1 (production)"}
        assert _model_page_says(console).startswith("Version 1 answers requests without a version (alias production)")

        r = admin.put(f"/api/v1/models/{MODEL}/aliases/production", json={"version": 2})
        assert r.status_code == 200, r.text
        said = _everywhere(admin, console)
        assert said["answered by"] == "2" and said["metrics version"] == 2
        assert said["models page"] == said["dashboard"] == said["dashboard live"] == "v2 (production)"
        assert said["api list"] == said["metrics"] == {"2": 100}


def test_a_split_is_shown_with_its_weights(app, two_versions):
    admin = app.client(app.create_key("serving split admin", "admin"))
    console = app.client()
    sign_in(console, app.app, "serving-split-viewer", "viewer")
    with closing(admin), closing(console):
        r = admin.put(f"/api/v1/models/{MODEL}/aliases/production", json={"versions": {"1": 90, "2": 10}})
        assert r.status_code == 200, r.text
        said = _everywhere(admin, console)
        assert said["metrics version"] is None and said["api list"] == said["metrics"] == {"1": 90, "2": 10}
        assert said["models page"] == said["dashboard"] == "v1 90%, v2 10% (production)"
        assert said["answered by"] in ("1", "2")
        assert "split by the production alias: v1 90%, v2 10%" in _model_page_says(console)
