"""Rollout in a real browser: roll an alias back with one click, guard a canary, watch a shadow's chart."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "console-rollout"
BODY = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                   {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


@pytest.fixture(scope="module")
def rollout_model(server, tmp_path_factory, admin_key) -> str:
    folder = tmp_path_factory.mktemp("console-rollout")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for offset in (0, 100):
            path = onnx_models.offset_add_model(folder / f"v{offset}.onnx", offset)
            assert upload(api, MODEL, path).status_code == 201
    return MODEL


def test_rollback_guard_and_shadow_from_the_model_page(server, api, rollout_model, page):  # noqa: F811
    base = f"/api/v1/models/{MODEL}/aliases"
    assert api.put(f"{base}/production", json={"version": 1}).status_code == 200
    assert api.put(f"{base}/production", json={"version": 2}).status_code == 200
    sign_in_as_new_user(page, server, "rollout-maintainer", "maintainer", f"/models/{MODEL}?tab=traffic")
    assert "Version 2 answers" in page.inner_text("#served")
    page.shots("before-rollback")
    page.get_by_role("button", name="Roll alias production back to v1").click()  # it asks first (issue 24)
    assert "go to v1 at once instead of v2" in page.inner_text("#confirm")
    page.get_by_role("button", name="Yes, roll back to v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=rollback")
    assert "rolled back" in page.inner_text("#notice")
    assert "Version 1 answers" in page.inner_text("#served")
    assert api.post(f"/v2/models/{MODEL}/infer", json=BODY).headers["FlashML-Model-Version"] == "1"
    events = [(e["action"], e["actor"]) for e in api.get("/api/v1/audit").json()]
    assert ("model.alias_rollback", "rollout-maintainer/console") in events
    page.shots("rolled-back")

    # A guarded canary with a shadow, from the alias form; a bad guard is explained and nothing is saved.
    page.locator("#alias-name").fill("canary")
    page.get_by_label("Version (a ready").fill("1")
    page.get_by_label("Canary guard").fill("max_error_rate=0.1")
    page.get_by_role("button", name="Save alias").click()
    assert "split" in page.inner_text("#page-error") and page.get_by_label("Canary guard").input_value()
    assert api.get(f"{base}/").json()[0]["alias"] == "production"
    page.get_by_label("Version (a ready").fill("1=90, 2=10")
    page.get_by_role("button", name="Save alias").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=alias")
    assert "error rate above 10% over 60 s" in page.inner_text("#alias-canary")  # the guard filter
    page.locator("#alias-name").fill("production")
    page.get_by_label("Version (a ready").fill("1")
    page.get_by_label("Shadow").fill("2=100")
    page.get_by_role("button", name="Save alias").click()
    page.get_by_role("button", name="Yes, serve v1").click()  # production moves: the confirm step
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=serve")
    assert "shadow: v2 gets 100.0%" in page.inner_text("#alias-production")
    for _ in range(8):
        assert api.post(f"/v2/models/{MODEL}/infer", json=BODY).headers["FlashML-Model-Version"] == "1"
    while api.get(f"{base}/production/shadow").json()["compared"] < 8:
        page.wait_for_timeout(50)
    page.goto(f"{server.url}/models/{MODEL}?tab=traffic")
    summary = page.inner_text("#shadow-production .shadow-summary")
    assert "8 compared: 100.0% agree, largest difference 100" in summary
    page.wait_for_selector("#shadow-production .shadow-chart canvas")
    page.shots("shadow-chart")
    for name in ("canary", "production"):
        assert api.delete(f"{base}/{name}").status_code == 204


def test_response_cache_toggle_and_counts(server, api, rollout_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "cache-maintainer", "maintainer", f"/models/{MODEL}?tab=settings")
    assert "Off" in page.inner_text("#cache-state")
    page.get_by_label("Answers kept").fill("many")
    page.get_by_label("Answer identical inputs from the cache").check()
    page.get_by_role("button", name="Save cache setting").click()
    assert "max_entries" in page.inner_text("#page-error")
    assert api.get(f"/api/v1/models/{MODEL}").json()["response_cache"]["enabled"] is False
    page.get_by_label("Answers kept").fill("10")
    page.get_by_label("Answer identical inputs from the cache").check()
    page.get_by_role("button", name="Save cache setting").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=cache")
    for _ in range(3):
        assert api.post(f"/v2/models/{MODEL}/versions/1/infer", json=BODY).status_code == 200
    page.reload()
    assert "up to 10 answers" in page.inner_text("#cache-state")
    assert "1 kept, 2 hits, 1 misses" in page.inner_text("#cache-state")
    page.shots("cache-on")
    page.get_by_label("Answer identical inputs from the cache").uncheck()
    page.get_by_role("button", name="Save cache setting").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=cache")
    assert "Off" in page.inner_text("#cache-state")


def test_pin_and_memory_on_the_model_page(server, api, rollout_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "pin-maintainer", "maintainer", f"/models/{MODEL}?tab=settings")
    assert "no memory budget" in page.inner_text("#memory-budget")
    assert "loaded, holds about" in page.inner_text("#memory-v1 .version-memory")
    page.get_by_role("button", name="Pin v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=pin")
    assert "pinned" in page.inner_text("#memory-v1 .version-memory")
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")  # each version's card says it too
    assert "pinned" in page.inner_text("#version-1 .version-memory")
    page.goto(f"{server.url}/models/{MODEL}?tab=settings")
    assert api.get(f"/api/v1/models/{MODEL}/versions/1").json()["pinned"] is True
    page.shots("pinned")
    page.get_by_role("button", name="Unpin v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=unpin")
    assert "pinned" not in page.inner_text("#memory-v1 .version-memory")
