"""The models pages in a real browser: search, a model's signature and performance, config, archive, roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "console-add"


@pytest.fixture(scope="module")
def console_model(server, tmp_path_factory, admin_key) -> str:
    import httpx

    path = onnx_models.add_model(tmp_path_factory.mktemp("console") / "add.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        r = upload(api, MODEL, path)
        assert r.status_code == 201, r.text
    return MODEL



def test_maintainer_lists_reads_and_changes_a_model(server, api, console_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "console-maintainer", "maintainer", "/models")
    assert page.get_attribute("a[aria-current=page]", "href") == "/models"
    rows = page.locator("#models-rows tr")
    assert page.locator("#models-rows").get_by_role("link", name=MODEL).is_visible()
    page.shots("list")
    # The search box filters the rows as one types (htmx), without reloading the page.
    page.get_by_label("Search by name").fill("no-such-model")
    page.wait_for_function("!document.querySelector('#models-rows').textContent.includes('console-add')")
    assert "No model name contains" in page.inner_text("#models-rows")
    page.shots("search-none")
    page.get_by_label("Search by name").fill("console")
    page.locator("#models-rows").get_by_role("link", name=MODEL).wait_for()
    assert rows.count() >= 1
    page.shots("search-found")
    # The plain GET fallback works too.
    page.goto(server.url + "/models?q=console-a")
    assert page.locator("#models-rows").get_by_role("link", name=MODEL).is_visible()

    page.locator("#models-rows").get_by_role("link", name=MODEL).click()
    page.wait_for_url(f"{server.url}/models/{MODEL}")
    # The page opens on its overview (issue 24): the performance card; each other section is a tab.
    page.wait_for_selector("#perf-chart canvas")  # uPlot drew the performance card
    assert page.locator("#perf-table tbody tr").count() >= 1
    page.shots("model")
    page.get_by_role("link", name="Versions", exact=True).click()  # htmx swaps the section in
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=versions")
    signature = page.locator("#version-1 table.signature")
    assert "FP32" in signature.inner_text() and "[any, 4]" in signature.inner_text()
    assert "sum" in signature.inner_text()
    # Per version: state, size, who uploaded it and when, the validation report.
    version = page.inner_text("#version-1")
    assert "ready" in version and "bytes" in version and "e2e admin" in version and "UTC" in version
    assert "Validation" in version and "passed" in version
    page.shots("model-versions")
    page.get_by_role("link", name="Try it", exact=True).click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=try")
    assert '"datatype": "FP32"' in page.inner_text("#snippet-curl")
    assert "tritonclient" in page.inner_text("#snippet-python")

    # Change max_batch_size on the form (the Settings tab); the API sees it.
    page.get_by_role("link", name="Settings", exact=True).click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=settings")
    page.get_by_label("Max batch size").fill("5")
    page.get_by_label("Preferred batch sizes").fill("")
    page.get_by_role("button", name="Save serving config").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=config")
    assert "Serving config saved" in page.inner_text("#notice")
    config = api.get(f"/api/v1/models/{MODEL}/versions/1/config").json()["config"]
    assert config["max_batch_size"] == 5
    page.shots("config-saved")

    # A bad value is refused in plain words and nothing changes.
    page.get_by_label("Preferred batch sizes").fill("64")
    page.get_by_role("button", name="Save serving config").click()
    assert "preferred_batch_sizes" in page.inner_text("#page-error")
    assert api.get(f"/api/v1/models/{MODEL}/versions/1/config").json()["config"]["preferred_batch_sizes"] == []
    page.shots("config-refused")

    # Archive (it asks first: v1 is the only version serving), then restore.
    page.goto(f"{server.url}/models/{MODEL}?tab=versions")
    page.get_by_role("button", name="Archive v1").click()
    assert "only version that serves" in page.inner_text("#confirm")
    page.shots("archive-confirm")
    page.get_by_role("button", name="Yes, archive v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=archive")
    assert api.get(f"/api/v1/models/{MODEL}/versions/1").json()["state"] == "archived"
    assert "archived" in page.inner_text("#version-1 h3")
    page.shots("archived")
    page.get_by_role("button", name="Restore v1").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?done=restore")
    assert api.get(f"/api/v1/models/{MODEL}/versions/1").json()["state"] == "ready"
    page.shots("restored")
    # Delete sits behind a second, explicit button.
    assert not page.get_by_role("button", name="Yes, delete version 1").is_visible()
    page.get_by_text("Delete v1…").click()
    assert page.get_by_role("button", name="Yes, delete version 1").is_visible()
    page.shots("delete-confirm")


def test_viewer_reads_only(server, console_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "console-viewer", "viewer", f"/models/{MODEL}?tab=versions")
    assert page.locator("#version-1 table.signature").is_visible()
    assert page.get_by_role("button", name="Archive v1").count() == 0
    assert page.get_by_text("Delete v1…").count() == 0
    page.goto(f"{server.url}/models/{MODEL}?tab=settings")
    assert page.locator("#config-form").count() == 0
    assert page.locator("#config-readonly").is_visible()
    page.goto(f"{server.url}/models/{MODEL}")
    page.wait_for_selector("#perf-chart canvas")
    page.shots("viewer")
    page.set_viewport_size({"width": 375, "height": 800})  # a phone: only the table wrappers scroll sideways
    page.reload()
    page.wait_for_selector("#perf-chart canvas")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.shots("viewer-phone")
    forged = page.request.post(f"{server.url}/models/{MODEL}/versions/1/config",
                               form={"max_batch_size": "1", "csrf_token": "forged"})
    assert forged.status == 403
    token = page.get_attribute("input[name=csrf_token]", "value")
    refused = page.request.post(f"{server.url}/models/{MODEL}/versions/1/archive", form={"csrf_token": token})
    assert refused.status == 403 and refused.json()["code"] == "role_forbidden"


def test_the_snippets_work_as_copied(server, admin_key, console_model, page):  # noqa: F811
    """Paste the page's curl command into a shell and its Python into python: both get the model's answer."""
    sign_in_as_new_user(page, server, "console-snippets", "viewer", f"/models/{MODEL}?tab=try")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copied = {}
    for snippet, button in (("curl", "Copy the curl command"), ("python", "Copy the Python example")):
        page.get_by_role("button", name=button).click()
        page.wait_for_function(f"document.getElementById('copy-{snippet}-status').textContent === 'Copied.'")
        copied[snippet] = page.evaluate("() => navigator.clipboard.readText()")
        assert copied[snippet] == page.inner_text(f"#snippet-{snippet}").strip()
    page.shots("snippets-copied")
    env = {**os.environ, "FLASHML_KEY": admin_key}
    curl = subprocess.run(["bash", "-c", copied["curl"]], env=env, capture_output=True, text=True, timeout=60)
    assert curl.returncode == 0, curl.stderr
    (output,) = json.loads(curl.stdout)["outputs"]
    assert output["name"] == "sum" and output["data"] == [2.0, 2.0, 2.0, 2.0]
    python = subprocess.run([sys.executable, "-c", copied["python"]], env=env,
                            capture_output=True, text=True, timeout=120)
    assert python.returncode == 0, python.stderr
    assert "[[2. 2. 2. 2.]]" in python.stdout


def test_a_forged_token_on_a_page_form_is_refused_on_a_page(server, api, console_model, page):  # noqa: F811
    """A plain form post with a wrong CSRF token: 403 and the sentence on a page (not raw JSON); nothing changes."""
    sign_in_as_new_user(page, server, "console-forger", "maintainer", f"/models/{MODEL}?tab=versions")
    page.evaluate("() => document.querySelectorAll('input[name=csrf_token]').forEach(e => { e.value = 'forged'; })")
    with page.expect_response(lambda r: r.url.endswith("/archive")) as answer:
        page.get_by_role("button", name="Archive v1").click()
    assert answer.value.status == 403
    assert "security token" in page.inner_text("#page-error")
    page.shots("forged-refused")
    assert api.get(f"/api/v1/models/{MODEL}/versions/1").json()["state"] == "ready"
    page.get_by_role("link", name="Back to the page").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}?tab=versions")
    # The JSON API answers JSON whatever the Accept header says.
    r = api.get("/api/v1/models/no-such-model", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json()["code"]


def test_the_performance_card_says_how_many_instances_auto_tune_chose(server, api, tmp_path, page):  # noqa: F811
    r = upload(api, "console-conv", onnx_models.conv_model(tmp_path / "conv.onnx"))
    assert r.status_code == 201, r.text
    card = api.get("/api/v1/models/console-conv/versions/1/config").json()["performance"]
    sign_in_as_new_user(page, server, "console-perf", "viewer", "/models/console-conv")
    page.wait_for_selector("#perf-chart canvas")
    if "instances" not in card:  # one core: nothing to split, nothing said
        assert page.locator("#perf-instances").count() == 0
        return
    said = page.inner_text("#perf-instances")
    split = card["instances"]
    assert f"At batch size {split['batch_size']}, one instance of all the cores ran" in said
    assert "2 instances sharing them" in said and f"auto-tune chose {split['instance_count']} instance" in said
    page.shots("perf-instances")


def test_a_version_published_with_a_warning_shows_it_on_its_page(server, api, page, tmp_path):  # noqa: F811
    """A model no made-up input runs is published with a warning (issue 21): its page says what failed and what
    to do, in words."""
    from tests.helpers import real_world_models
    from tests.helpers.uploads import upload

    path = real_world_models.reflect_padded_audio(tmp_path / "warned.onnx", pad=20000)
    assert upload(api, "console-warned", path).json()["warnings"]
    sign_in_as_new_user(page, server, "console-warned-viewer", "viewer", "/models/console-warned?tab=versions")
    text = page.inner_text("#version-1")
    assert "FlashML could not run this model on made-up inputs" in text and "send it a real request" in text
    page.shots("version-warning")
