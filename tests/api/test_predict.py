"""Task predict in process: each task's answers against a numpy reference, batching, and every bad input."""

from __future__ import annotations

import base64
import io
from contextlib import closing

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import onnx_models
from tests.helpers import task_models as tm
from tests.helpers.tasks import (
    BGR_TOML,
    BSC_TOML,
    CLS_TOML,
    DET_TOML,
    EMB_TOML,
    TXT_TOML,
    png,
    ref_classify,
    ref_pixels,
    softmax,
)
from tests.helpers.uploads import upload

# ---- the reference: the same processing, written plainly ---------------------------------------------

def plain_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def ref_nms(found, place, data: bytes, iou_threshold: float, labels) -> list[dict]:
    """Greedy NMS within a class over (score, class, box) candidates, then boxes back to original pixels."""
    sx, sy, dx, dy = place
    found = sorted(found, key=lambda f: -f[0])
    kept = []
    for f in found:
        if all(k[1] != f[1] or plain_iou(k[2], f[2]) <= iou_threshold for k in kept):
            kept.append(f)
    img = Image.open(io.BytesIO(data))
    out = []
    for score, c, (x1, y1, x2, y2) in kept:
        box = [min(max((x1 - dx) / sx, 0), img.width), min(max((y1 - dy) / sy, 0), img.height),
               min(max((x2 - dx) / sx, 0), img.width), min(max((y2 - dy) / sy, 0), img.height)]
        out.append({"label": labels[c], "score": score, "box": box})
    return out


def ref_detect(data: bytes) -> list[dict]:
    pixels, place = ref_pixels(data, (64, 64), "letterbox")
    scores = 1 / (1 + np.exp(-((pixels / 255).mean(axis=(0, 1)) @ tm.DET_W).reshape(2, 6)))
    found = []
    for a in range(6):
        c = int(np.argmax(scores[:, a]))
        if scores[c, a] >= 0.3:
            cx, cy, w, h = tm.DET_BOXES[:, a]
            found.append((float(scores[c, a]), c, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
    return ref_nms(found, place, data, 0.4, ["cat", "dog"])


def ref_detect_bsc(data: bytes) -> list[dict]:
    pixels, place = ref_pixels(data, (64, 64), "stretch")
    scores = 1 / (1 + np.exp(-((pixels / 255).mean(axis=(0, 1)) @ tm.BSC_W)))
    found = [(float(scores[i]), int(tm.BSC_CLASSES[i]), list(tm.BSC_BOXES[i])) for i in range(3) if scores[i] >= 0.2]
    return ref_nms(found, place, data, 0.5, ["0", "1"])


def ref_classify_bgr(data: bytes) -> list[dict]:
    pixels, _ = ref_pixels(data, (32, 32), "stretch")
    scores = 1 / (1 + np.exp(-((pixels[:, :, ::-1] * 0.01).mean(axis=(0, 1)) @ tm.CLS_W + tm.CLS_B)))
    return [{"label": "rgb"[i], "score": float(scores[i])} for i in np.argsort(-scores)]


def ref_text(text: str, max_length: int) -> np.ndarray:
    return tm.EMB[tm.token_ids(text, max_length)].mean(axis=0)


# ---- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(app, admin_key, tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    tok = tm.tokenizer_json(d / "tokenizer.json")
    bundles = {
        "tcls": tm.bundle(d / "cls.tar.gz", CLS_TOML, tm.image_classifier(d / "c.onnx", labels=["red", "green",
                                                                                               "blue"])),
        "tdet": tm.bundle(d / "det.tar.gz", DET_TOML, tm.yolo_detector(d / "d.onnx")),
        "tbsc": tm.bundle(d / "bsc.tar.gz", BSC_TOML, tm.bsc_detector(d / "b.onnx")),
        "tbgr": tm.bundle(d / "bgr.tar.gz", BGR_TOML, tm.image_classifier(d / "n.onnx", layout="NHWC")),
        "ttxt": tm.bundle(d / "txt.tar.gz", TXT_TOML, tm.text_classifier(d / "t.onnx"), **{
            "tokenizer.json": tok, "labels.txt": b"negative\npositive\n"}),
        "temb": tm.bundle(d / "emb.tar.gz", EMB_TOML, tm.embedder(d / "e.onnx"), **{"tokenizer.json": tok}),
    }
    with closing(app.client(admin_key)) as c:
        for name, path in bundles.items():
            r = upload(c, name, path, filename="bundle.tar.gz")
            assert r.status_code == 201, r.text
    return bundles


def check_close(got: list[dict], want: list[dict]) -> None:
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g["score"] == pytest.approx(w["score"], abs=1e-5)
        if "box" in w:
            assert [g["box"][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx(w["box"], abs=1e-3)


# ---- answers ----------------------------------------------------------------------------------------------

def test_image_classification_multipart_raw_and_base64(api, models):
    images = [png(50, 40, 1), png(30, 70, 2, fmt="JPEG")]
    want = [[{"label": ["red", "green", "blue"][i], "score": s} for i, s in ref_classify(img)] for img in images]
    r = api.post("/v1/models/tcls/predict", files=[("image", ("a.png", images[0], "image/png")),
                                                   ("image", ("b.jpg", images[1], "image/jpeg"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tcls" and body["version"] == 1 and body["task"] == "image-classification"
    assert r.headers["flashml-model-version"] == "1"
    for got, exp in zip(body["predictions"], want, strict=True):
        check_close(got, exp)  # labels from the ONNX metadata (YOLO-style "names")
    raw = api.post("/v1/models/tcls/versions/1/predict", content=images[1], headers={"Content-Type": "image/jpeg"})
    check_close(raw.json()["predictions"][0], want[1])
    b64 = api.post("/v1/models/tcls/predict", json={"images": [base64.b64encode(i).decode() for i in images]})
    assert [p for p in b64.json()["predictions"]] == body["predictions"]


def test_object_detection_boxes_in_original_pixels(api, models):
    for seed in (3, 4, 5):
        image = png(100, 60, seed)
        r = api.post("/v1/models/tdet/predict", content=image, headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        check_close(r.json()["predictions"][0], ref_detect(image))


def test_boxes_scores_classes_format_and_stretch(api, models):
    images = [png(90, 50, seed) for seed in (6, 7, 8)]
    r = api.post("/v1/models/tbsc/predict", json={"images": [base64.b64encode(i).decode() for i in images]})
    assert r.status_code == 200, r.text
    assert any(r.json()["predictions"]), "the reference images should yield detections"
    for image, got in zip(images, r.json()["predictions"], strict=True):
        check_close(got, ref_detect_bsc(image))


def test_bgr_nhwc_sigmoid_classifier(api, models):
    image = png(45, 20, 9)
    r = api.post("/v1/models/tbgr/predict", files={"file": ("a.png", image, "image/png")})
    assert r.status_code == 200, r.text
    check_close(r.json()["predictions"][0], ref_classify_bgr(image))


def test_text_classification_truncates_long_texts(api, models):
    texts = ["good movie", "the plot was very very awful bad", "great"]
    r = api.post("/v1/models/ttxt/predict", json={"texts": texts})
    assert r.status_code == 200, r.text
    for text, got in zip(texts, r.json()["predictions"], strict=True):
        scores = softmax(ref_text(text, 6) @ tm.TXT_W)
        want = [{"label": ["negative", "positive"][i], "score": float(scores[i])} for i in np.argsort(-scores)]
        check_close(got, want)


def test_text_items_share_padded_batches(api, models):
    texts = [" ".join(["good"] * n + ["bad"] * (n % 3)) for n in range(1, 9)]
    r = api.post("/v1/models/ttxt/predict", json={"texts": texts})
    assert r.status_code == 200, r.text
    for text, got in zip(texts, r.json()["predictions"], strict=True):
        scores = softmax(ref_text(text, 6) @ tm.TXT_W)
        assert {g["label"]: g["score"] for g in got} == pytest.approx(
            {"negative": scores[0], "positive": scores[1]}, abs=1e-5)
    stats = api.get("/api/v1/models/ttxt/versions/1").json()["stats"]
    assert max(int(k) for k in stats["histogram"]) > 1  # items of different lengths ran together, padded


def test_embeddings_mean_pooled_and_normalized(api, models):
    texts = ["good movie", "awful plot zzz", "a"]
    r = api.post("/v1/models/temb/predict", json={"texts": texts})
    assert r.status_code == 200, r.text
    for text, vector in zip(texts, r.json()["predictions"], strict=True):
        want = ref_text(text, 8)
        assert vector == pytest.approx((want / np.linalg.norm(want)).tolist(), abs=1e-5)


def test_predict_counts_in_request_metrics(api, models):
    before = api.get("/api/v1/metrics", params={"model": "temb"}).json()["summary"]["requests"]
    api.post("/v1/models/temb/predict", json={"texts": ["good"]})
    api.post("/v1/models/temb/predict", json={"texts": [""]})
    summary = api.get("/api/v1/metrics", params={"model": "temb"}).json()["summary"]
    assert summary["requests"] == before + 2 and summary["errors_4xx"] >= 1


# ---- bad inputs -------------------------------------------------------------------------------------------

def error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    return r.json()


def test_bad_images(api, models):
    error(api.post("/v1/models/tcls/predict", content=b"GIF89a not really", headers={"Content-Type": "image/gif"}),
          415, "unsupported_image")
    icon = png(8, 8, 1, fmt="ICO")
    error(api.post("/v1/models/tcls/predict", content=icon, headers={"Content-Type": "image/x-icon"}),
          415, "unsupported_image")
    huge = png(8000, 6000, 1, mode="1")  # 48 million pixels, a few kB of PNG: refused before decoding
    body = error(api.post("/v1/models/tcls/predict", files=[("f", ("a.png", png(8, 8, 1), "image/png")),
                                                            ("f", ("b.png", huge, "image/png"))]),
                 413, "image_too_large")
    assert body["details"]["item"] == 1
    error(api.post("/v1/models/tcls/predict", json={"images": ["not base64!"]}), 400, "bad_base64")
    error(api.post("/v1/models/tcls/predict", json={"images": []}), 400, "no_items")
    wrong = api.post("/v1/models/tcls/predict", json={"texts": ["a"]})
    error(wrong, 400, "wrong_input_kind")
    assert wrong.headers["FlashML-Model-Version"] == "1"  # an error after the version was picked names it
    error(api.post("/v1/models/tcls/predict", content=b"x", headers={"Content-Type": "text/plain"}),
          415, "unsupported_media_type")


def test_bad_texts(api, models):
    error(api.post("/v1/models/ttxt/predict", json={"texts": ["good"] * 65}), 413, "too_many_items")
    error(api.post("/v1/models/ttxt/predict", json={"texts": [1]}), 400, "bad_text")
    error(api.post("/v1/models/ttxt/predict", json={"texts": ["  "]}), 400, "empty_text")
    error(api.post("/v1/models/ttxt/predict", content=png(8, 8, 1), headers={"Content-Type": "image/png"}),
          400, "wrong_input_kind")
    error(api.post("/v1/models/ttxt/predict", content=b"{", headers={"Content-Type": "application/json"}),
          400, "bad_json")
    body = error(api.post("/v1/models/temb/predict", json={"texts": ["good " * 7]}), 413, "text_too_long")
    assert body["details"] == {"item": 0, "tokens": 9, "max_length": 8}


def test_models_keys_and_versions(api, app, models, tmp_path):
    onnx_models.add_model(tmp_path / "add.onnx")
    assert upload(api, "traw", tmp_path / "add.onnx").status_code == 201
    error(api.post("/v1/models/traw/predict", json={"texts": ["a"]}), 409, "not_a_task_model")
    error(api.post("/v1/models/nope/predict", json={"texts": ["a"]}), 404, "model_not_found")
    error(api.post("/v1/models/temb/versions/7/predict", json={"texts": ["a"]}), 404, "version_not_found")
    assert app.client().post("/v1/models/temb/predict", json={"texts": ["a"]}).status_code == 401
    other = app.create_key("only tcls", "inference", models=("tcls",))
    r = app.client().post("/v1/models/temb/predict", json={"texts": ["a"]},
                   headers={"Authorization": f"Bearer {other}"})
    error(r, 403, "model_not_allowed")
    assert api.put("/api/v1/models/temb/aliases/production", json={"version": 1}).status_code in (200, 201)
    r = api.post("/v1/models/temb/versions/production/predict", json={"texts": ["good"]})
    assert r.status_code == 200 and r.headers["flashml-model-version"] == "1"


def test_upload_explains_each_mismatch(api, tmp_path):
    toml = CLS_TOML.replace('size = [32, 32]', 'size = [32, 32]\nlayout = "NHWC"').replace(
        "top_k = 2", "top_k = 2\n").replace('task = "image-classification"',
                                            'task = "image-classification"\nlabels = ["a", "b"]')
    path = tm.bundle(tmp_path / "bad.tar.gz", toml, tm.image_classifier(tmp_path / "c.onnx", size=(32, 32)))
    body = error(upload(api, "tbad", path, filename="bad.tar.gz"), 422, "task_mismatch")
    problems = body["details"]["version"]["errors"][0]["details"]["problems"]
    assert len(problems) == 3 and "layout" in problems[0] and "3 classes but 2 labels" in problems[2]
    det = DET_TOML.replace('format = "yolov8"', 'format = "boxes-scores-classes"')
    path = tm.bundle(tmp_path / "bad2.tar.gz", det, tm.yolo_detector(tmp_path / "d.onnx"))
    body = error(upload(api, "tbad", path, filename="bad2.tar.gz"), 422, "task_mismatch")
    assert "lacks boxes, scores, classes" in body["error"]
    path = tm.bundle(tmp_path / "bad3.tar.gz", EMB_TOML, tm.image_classifier(tmp_path / "c.onnx"),
                     **{"tokenizer.json": b"{}"})
    problems = error(upload(api, "tbad", path, filename="bad3.tar.gz"), 422,
                     "task_mismatch")["details"]["version"]["errors"][0]["details"]["problems"]
    assert any("not a Hugging Face tokenizer.json" in p for p in problems)
    assert any("feeds input_ids" in p for p in problems)
