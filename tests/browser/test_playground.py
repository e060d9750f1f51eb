"""The playground in a real browser: a viewer runs a model from the console and reads the answer or the error."""

from __future__ import annotations

import json

import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "play-add"


@pytest.fixture(scope="module")
def play_model(server, tmp_path_factory, admin_key) -> str:
    import httpx

    path = onnx_models.add_model(tmp_path_factory.mktemp("playground") / "add.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        r = upload(api, MODEL, path)
        assert r.status_code == 201, r.text
    return MODEL



def test_viewer_runs_the_model_and_reads_outputs_and_errors(server, api, play_model, page):  # noqa: F811
    sign_in_as_new_user(page, server, "play-viewer", "viewer", f"/models/{MODEL}?tab=try")
    page.get_by_role("link", name="Try it in the playground").click()
    page.wait_for_url(f"{server.url}/models/{MODEL}/playground")
    signature = page.locator("#signature").inner_text()
    assert "FP32" in signature and "[any, 4]" in signature and "sum" in signature
    assert page.locator("#version option").all_inner_texts() == ["v1"]
    editor = page.get_by_label("Request (KServe V2 JSON)")
    prefilled = json.loads(editor.input_value())  # valid JSON built from the signature
    assert [(t["name"], t["datatype"], t["shape"]) for t in prefilled["inputs"]] == [
        ("a", "FP32", [1, 4]), ("b", "FP32", [1, 4])]
    page.shots("prefilled")

    body = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 4], "data": [1, 2, 3, 4, 5, 6, 7, 8]},
                       {"name": "b", "datatype": "FP32", "shape": [2, 4],
                        "data": [10, 20, 30, 40, 50, 60, 70, 80]}]}
    editor.fill(json.dumps(body))
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#latency")
    assert page.url == f"{server.url}/models/{MODEL}/playground"  # htmx swapped the result in place
    output = page.locator("#output-1").inner_text()
    assert "sum" in output and "FP32" in output and "[2, 4]" in output
    assert "[11.0, 22.0, 33.0, 44.0]" in output and "[55.0, 66.0, 77.0, 88.0]" in output
    assert float(page.inner_text("#latency")) > 0
    assert "Version 1 answered" in page.inner_text("#result-summary")
    page.shots("outputs")

    # A tensor of the wrong shape: the error sentence and its code, in words, not JSON; the text stays.
    body["inputs"][0]["shape"] = [2, 3]
    bad = json.dumps(body)
    editor.fill(bad)
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#result-error")
    error = page.inner_text("#result-error")
    assert "The request failed" in error and "(tensor_shape)" in error and "'a'" in error and "shape" in error
    assert '{"error"' not in error
    assert editor.input_value() == bad
    page.shots("tensor-error")

    # Without JavaScript's help (a plain form post) the whole page comes back with the answer and the text.
    token = page.get_attribute("input[name=csrf_token]", "value")
    plain = page.request.post(f"{server.url}/models/{MODEL}/playground",
                              form={"csrf_token": token, "version": "1", "body": bad})
    assert plain.status == 400 and "<html" in plain.text() and "(tensor_shape)" in plain.text()

    forged = page.request.post(f"{server.url}/models/{MODEL}/playground",
                               form={"csrf_token": "forged", "body": json.dumps(prefilled)})
    assert forged.status == 403 and forged.json()["code"] == "csrf_failed"
