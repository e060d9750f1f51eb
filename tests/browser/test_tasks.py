"""Task models in a real browser: the model page shows the task, the playground runs images and texts."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import task_models as tm
from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.tasks import DET_TOML, EMB_TOML, png
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def task_models(server, admin_key, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser-tasks")
    tok = tm.tokenizer_json(d / "tokenizer.json")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        for name, path in {"b-det": tm.bundle(d / "det.tar.gz", DET_TOML, tm.yolo_detector(d / "d.onnx")),
                           "b-emb": tm.bundle(d / "emb.tar.gz", EMB_TOML, tm.embedder(d / "e.onnx"),
                                              **{"tokenizer.json": tok})}.items():
            r = upload(api, name, path, filename="bundle.tar.gz")
            assert r.status_code == 201, r.text
    return d


def test_detection_model_page_and_playground_draws_boxes(server, api, task_models, page):  # noqa: F811
    sign_in_as_new_user(page, server, "task-viewer", "viewer", "/models/b-det")
    assert page.inner_text("#task-name") == "object-detection"
    settings = page.inner_text("#task-settings")
    assert "2: cat, dog" in settings and "preprocess.resize" in settings and '"letterbox"' in settings
    assert "postprocess.iou_threshold" in settings and "0.4" in settings
    page.shots("model-page")
    page.get_by_role("link", name="Try it", exact=True).click()  # the snippets' tab (issue 24)
    page.wait_for_url(f"{server.url}/models/b-det?tab=try")
    assert "-F image=@photo.jpg" in page.inner_text("#snippet-curl") and "/v1/models/b-det/predict" in \
        page.inner_text("#snippet-curl")
    page.shots("model-try")

    page.get_by_role("link", name="Try it in the playground").click()
    page.wait_for_url(f"{server.url}/models/b-det/playground")
    assert "object-detection" in page.inner_text("#task-summary")
    image = png(100, 60, 3)
    path = task_models / "street.png"
    path.write_bytes(image)
    page.set_input_files("#task-image", str(path))
    page.wait_for_function("document.getElementById('task-canvas').width === 100")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#prediction-1")
    want = api.post("/v1/models/b-det/predict", content=image, headers={"Content-Type": "image/png"}).json()
    found = want["predictions"][0]
    assert found, "the reference image should yield detections"
    rows = page.locator("#prediction-1 tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == [d["label"] for d in found]
    assert rows[0].split("\t")[1] == f"{found[0]['score']:.4f}"
    page.wait_for_function(f"document.getElementById('task-canvas').dataset.boxes === '{len(found)}'")
    assert "Version 1 answered" in page.inner_text("#result-summary")
    page.shots("boxes")

    path.write_bytes(b"not an image at all")
    page.set_input_files("#task-image", str(path))
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#result-error")
    assert "(unsupported_image)" in page.inner_text("#result-error")
    page.shots("bad-image")


def test_embeddings_playground_shows_vectors(server, task_models, page):  # noqa: F811
    sign_in_as_new_user(page, server, "task-viewer2", "viewer", "/models/b-emb/playground")
    page.get_by_label("Texts, one per line").fill("good movie\nawful plot")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#prediction-2")
    assert page.inner_text("#prediction-1 h3") == "good movie"
    assert page.inner_text("#prediction-2 .vector-dim") == "5"
    assert len(page.inner_text("#prediction-1 code.vector").split(", ")) == 5
    page.shots("vectors")
    page.get_by_label("Texts, one per line").fill("good " * 9)
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#result-error")
    assert "(text_too_long)" in page.inner_text("#result-error")
