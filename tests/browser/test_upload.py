"""The Upload page in a real browser: bytes sent, validation steps, a ready version, a refusal in plain words."""

from __future__ import annotations

import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server



def test_maintainer_uploads_a_model_and_sees_it_ready(server, page, tmp_path):  # noqa: F811
    sign_in_as_new_user(page, server, "upload-maintainer", "maintainer", "/models")
    page.get_by_role("link", name="Upload a model").click()
    page.wait_for_url(server.url + "/upload")
    assert page.locator('meta[name="csrf-token"]').get_attribute("content")
    page.shots("empty")

    path = onnx_models.add_model(tmp_path / "add.onnx")
    page.get_by_label("Model name").fill("upload-add")
    page.get_by_label("Model file").set_input_files(str(path))
    assert "add.onnx" in page.inner_text("#file-chosen")
    page.get_by_role("button", name="Upload").click()

    link = page.locator("#model-link")
    link.wait_for(timeout=120_000)
    assert page.evaluate("(() => { const p = document.getElementById('upload-progress');"
                         " return p.value === p.max && p.max > 0; })()")
    size = path.stat().st_size
    assert page.inner_text("#upload-bytes").startswith(f"{size} B of {size} B")
    assert link.get_attribute("href") == "/models/upload-add"
    steps = page.locator("#steps li")
    assert steps.count() >= 4 and page.locator("#steps li.done").count() == steps.count()
    assert page.get_attribute("#steps li[data-step=warmup]", "data-state") == "done"
    page.shots("ready")

    info = page.request.get(f"{server.url}/api/v1/models/upload-add").json()
    assert [v["state"] for v in info["versions"]] == ["ready"]
    assert "progress" not in info["versions"][0]  # only a validating version reports its steps so far
    link.click()
    page.wait_for_url(server.url + "/models/upload-add")
    assert "v1\tready" in page.inner_text("#versions-glance")  # the overview's versions (issue 24)


def test_custom_operators_are_refused_in_plain_words(server, page, tmp_path):  # noqa: F811
    sign_in_as_new_user(page, server, "upload-maintainer-2", "maintainer", "/upload")
    path = onnx_models.custom_domain_model(tmp_path / "custom.onnx")
    page.get_by_label("Model name").fill("upload-custom")
    page.get_by_label("Model file").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()

    error = page.locator("#upload-error")
    error.wait_for(timeout=120_000)
    assert error.get_attribute("data-code") == "custom_op_domain"
    assert "my.custom.ops" in error.inner_text()
    # The file did arrive and became a failed version: the page says that, not that nothing was uploaded.
    assert page.inner_text("#progress-title") == "Version 1 failed validation"
    assert error.inner_text().startswith("Version 1 failed validation: ") and "Not uploaded" not in error.inner_text()
    hint = page.inner_text("#upload-hint")
    assert 'custom operators from "my.custom.ops"' in hint and "standard ONNX operators" in hint
    assert page.get_attribute("#steps li[data-state=failed]", "data-step") == "check"
    page.shots("custom-op-refused")
    version = page.request.get(f"{server.url}/api/v1/models/upload-custom/versions/1").json()
    assert version["state"] == "failed" and version["errors"][0]["code"] == "custom_op_domain"

    # A bad name is caught before anything is sent.
    page.get_by_label("Model name").fill("../etc")
    page.get_by_role("button", name="Upload").click()
    assert "letters, digits" in page.inner_text("#name-error")


def test_slow_validation_is_polled_with_live_steps(tmp_path, page):  # noqa: F811
    """Past --upload-wait-s the API answers 202; the page polls the version and shows each step as it runs."""
    flags = list(SERVER_FLAGS)
    flags[flags.index("--upload-wait-s") + 1] = "1"
    flags[flags.index("--validation-timeout-s") + 1] = "6"
    srv = ServerProcess(tmp_path / "data", *flags).start()
    try:
        sign_in_as_new_user(page, srv, "upload-slow", "maintainer", "/upload")
        path = onnx_models.hang_model(tmp_path / "hang.onnx")
        page.get_by_label("Model name").fill("upload-hangs")
        page.get_by_label("Model file").set_input_files(str(path))
        page.get_by_role("button", name="Upload").click()
        # While it validates, the polled version carries "progress": the warm-up is the current step.
        page.wait_for_selector("#steps li[data-step=warmup][data-state=current]", timeout=30_000)
        assert page.get_attribute("#steps li[data-step=extract]", "data-state") == "done"
        assert page.get_attribute("#steps li[data-step=publish]", "data-state") == "todo"
        page.shots("validating")
        polled = page.request.get(f"{srv.url}/api/v1/models/upload-hangs/versions/1").json()
        assert polled["state"] == "validating" and [s["step"] for s in polled["progress"]][-1] == "warmup"
        error = page.locator("#upload-error")
        error.wait_for(timeout=60_000)
        assert error.get_attribute("data-code") == "validation_timeout"
        assert "validation_timeout_s" in page.inner_text("#upload-hint")
        assert page.get_attribute("#steps li[data-state=failed]", "data-step") == "warmup"
        page.shots("timed-out")
        done = page.request.get(f"{srv.url}/api/v1/models/upload-hangs/versions/1").json()
        assert done["state"] == "failed" and "progress" not in done
    finally:
        srv.stop()


def test_the_file_picker_is_keyboard_usable(server, page):  # noqa: F811
    sign_in_as_new_user(page, server, "upload-maintainer-3", "maintainer", "/upload")
    page.get_by_label("Model name").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "model-file"
    assert page.get_attribute("#model-file", "accept") == ".onnx,.tar.gz,.tgz,.zip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upload-button"
    # Dropping a file onto the zone chooses it, as the picker would.
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(2048)], "dropped.onnx"));
        const zone = document.getElementById("drop-zone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""")
    assert page.inner_text("#file-chosen") == "Chosen: dropped.onnx (2.0 kB)"
    assert page.evaluate("document.getElementById('model-file').files[0].name") == "dropped.onnx"
    page.shots("dropped")


def test_viewer_gets_403_and_no_link(server, page):  # noqa: F811
    sign_in_as_new_user(page, server, "upload-viewer", "viewer", "/models")
    assert page.get_by_role("link", name="Upload a model").count() == 0
    response = page.goto(server.url + "/upload")
    assert response.status == 403
    assert "maintainer role" in page.inner_text("#page-error")
    assert page.locator("#upload-form").count() == 0
    page.shots("viewer-403")


def test_upload_page_needs_sign_in(server, page):  # noqa: F811
    page.goto(server.url + "/upload")
    assert page.url.startswith(server.url + "/login?next=%2Fupload")


def test_progress_is_absent_for_a_ready_version(server, api, tmp_path):
    r = upload(api, "upload-progress", onnx_models.add_model(tmp_path / "add.onnx"))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "ready" and "progress" not in r.json()
    got = api.get("/api/v1/models/upload-progress/versions/1").json()
    assert got["state"] == "ready" and "progress" not in got
    assert [s["step"] for s in got["report"]["steps"]][:4] == ["extract", "manifest", "check", "warmup"]
