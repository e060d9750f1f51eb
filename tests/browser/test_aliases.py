"""Aliases in a real browser: a maintainer picks the served version and inference follows; viewers only read."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "console-served"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


@pytest.fixture(scope="module")
def served_model(server, tmp_path_factory, admin_key) -> str:
    folder = tmp_path_factory.mktemp("console-aliases")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for offset in (0, 100):  # v1 adds, v2 adds 100 more: the answer says which version ran
            r = upload(api, MODEL, onnx_models.offset_add_model(folder / f"v{offset}.onnx", offset))
            assert r.status_code == 201, r.text
    return MODEL


def _call(page, server, key: str, path: str = f"/v2/models/{MODEL}/infer"):  # noqa: F811
    """A V2 call from the browser's own HTTP stack, with an API key."""
    r = page.request.post(server.url + path, data=BODY, headers={"Authorization": f"Bearer {key}"})
    assert r.status == 200, r.text()
    return r.headers["flashml-model-version"], r.json()


def test_maintainer_serves_a_version_and_inference_follows(server, api, served_model, page):  # noqa: F811
    inference_key = api.post("/api/v1/keys", json={"name": "served", "role": "inference"}).json()["token"]
    # The page's sections are tabs (issue 24): aliases on Traffic, the versions' buttons on Versions, and moving
    # production asks first.
    sign_in_as_new_user(page, server, "alias-maintainer", "maintainer", f"/models/{MODEL}?tab=traffic")
    assert "Version 2, the newest ready one" in page.inner_text("#served")
    assert page.locator("#no-aliases").is_visible()
    assert _call(page, server, inference_key)[0] == "2"
    page.shots("before")

    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    page.get_by_role("button", name="Serve version 1").click()
    assert "today they reach v2" in page.inner_text("#confirm")
    assert _call(page, server, inference_key)[0] == "2"  # nothing moved yet
    page.get_by_role("button", name="Yes, serve v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=serve")
    assert "Served version changed" in page.inner_text("#notice")
    assert "Version 1 answers requests without a version" in page.inner_text("#served")
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    assert "production" in page.inner_text("#version-1 h3") and "production" not in page.inner_text("#version-2 h3")
    assert page.locator("#version-1").get_by_role("button", name="Serve version 1").count() == 0
    header, answer = _call(page, server, inference_key)
    assert header == "1" and answer["model_version"] == "1" and answer["outputs"][0]["data"] == [2, 3, 4, 5]
    page.shots("served-v1")

    # The playground starts on the served version, and says it answered.
    page.goto(f"{server.url}/models/{MODEL}?tab=try")
    page.get_by_role("link", name="Try it in the playground").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}/playground")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#latency")
    assert "Version 1 answered" in page.inner_text("#result-summary")
    page.shots("playground-served")

    # Any alias, from the small form; a bad name is explained and nothing is saved.
    page.goto(f"{server.url}/models/{MODEL}?tab=traffic")
    page.get_by_label("Alias (lowercase").fill("Bad Name")
    page.get_by_label("Version (a ready").fill("2")
    page.get_by_role("button", name="Save alias").click()
    assert "alias name" in page.inner_text("#page-error")
    assert page.get_by_label("Version (a ready").input_value() == "2"  # what was typed stays
    page.shots("alias-refused")
    page.locator("#alias-name").fill("staging")
    page.get_by_role("button", name="Save alias").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=alias")
    assert "v2" in page.inner_text("#alias-staging")
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    assert "staging" in page.inner_text("#version-2 h3")
    header, answer = _call(page, server, inference_key, f"/v2/models/{MODEL}/versions/staging/infer")
    assert header == "2" and answer["outputs"][0]["data"] == [102, 103, 104, 105]
    page.shots("alias-staging")

    # The served version cannot be archived while production points at it: the page says why.
    page.get_by_role("button", name="Archive v1").click()
    assert "the archive is refused" in page.inner_text("#confirm")
    page.get_by_role("button", name="Yes, archive v1").click()
    assert "production" in page.inner_text("#page-error") and "move or delete" in page.inner_text("#page-error")
    page.shots("archive-refused")

    # A canary split from the same form: the table and the badges show the weights.
    page.goto(f"{server.url}/models/{MODEL}?tab=traffic")
    page.locator("#alias-name").fill("canary")
    page.get_by_label("Version (a ready").fill("1=90, 2=10")
    page.get_by_role("button", name="Save alias").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=alias")
    assert "v1 90%, v2 10%" in page.inner_text("#alias-canary")
    assert api.get(f"/api/v1/models/{MODEL}/aliases").json()[0]["versions"] == {"1": 90, "2": 10}
    page.shots("canary-split")
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    assert "canary 10%" in page.inner_text("#version-2 h3") and "canary 90%" in page.inner_text("#version-1 h3")
    page.goto(f"{server.url}/models/{MODEL}?tab=traffic")
    page.get_by_role("button", name="Delete alias canary").click()
    page.get_by_role("button", name="Yes, delete canary").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=alias_delete")

    page.get_by_role("button", name="Delete alias staging").click()
    assert "Calls that name staging fail" in page.inner_text("#confirm")
    page.get_by_role("button", name="Yes, delete staging").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=alias_delete")
    assert page.locator("#alias-staging").count() == 0
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    page.get_by_role("button", name="Serve version 2").click()
    page.get_by_role("button", name="Yes, serve v2").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=serve")
    assert _call(page, server, inference_key)[0] == "2"
    events = [(e["action"], e["actor"], e["target"]) for e in api.get("/api/v1/audit").json()]
    assert ("model.alias_set", "alias-maintainer/console", f"{MODEL}/production") in events
    assert ("model.alias_delete", "alias-maintainer/console", f"{MODEL}/staging") in events
    page.shots("served-v2")


def test_viewer_sees_aliases_but_cannot_change_them(server, api, served_model, page):  # noqa: F811
    assert api.put(f"/api/v1/models/{MODEL}/aliases/production", json={"version": 2}).status_code == 200
    sign_in_as_new_user(page, server, "alias-viewer", "viewer", f"/models/{MODEL}?tab=versions")
    assert "production" in page.inner_text("#version-2 h3")
    assert page.get_by_role("button", name="Serve version 1").count() == 0
    page.goto(f"{server.url}/models/{MODEL}?tab=traffic")
    assert page.locator("#alias-production").is_visible()
    assert page.locator("#alias-form").count() == 0
    assert page.get_by_role("button", name="Delete alias production").count() == 0
    page.shots("viewer")
    token = page.get_attribute("input[name=csrf_token]", "value")  # the sign-out form's
    refused = page.request.post(f"{server.url}/models/{MODEL}/aliases",
                                form={"csrf_token": token, "alias": "production", "target": "1"})
    assert refused.status == 403 and refused.json()["code"] == "role_forbidden"
    refused = page.request.post(f"{server.url}/models/{MODEL}/aliases/production/delete", form={"csrf_token": token})
    assert refused.status == 403 and refused.json()["code"] == "role_forbidden"
    forged = page.request.post(f"{server.url}/models/{MODEL}/aliases",
                               form={"csrf_token": "forged", "alias": "production", "target": "1"})
    assert forged.status == 403 and forged.json()["code"] == "csrf_failed"
    assert api.get(f"/api/v1/models/{MODEL}/aliases").json()[0]["version"] == 2
