"""Task processing in-process: manifest tables, checks against a signature, decoding limits, NMS, placement."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flashml.errors import FlashMLError, ValidationFailedError
from flashml.registry.manifest import parse_manifest
from flashml.registry.task_checks import check_task, metadata_labels
from flashml.signature import Signature, TensorSpec
from flashml.tasks import detection, images
from flashml.tasks.config import ImageConfig, PostConfig, TokenizerConfig, parse_task
from flashml.tasks.runtime import TaskRuntime
from flashml.tasks.text import TextEncoder
from tests.helpers import task_models as tm


def config_of(data: dict):
    return parse_task({"task": data.get("task", "raw"), "labels": data.get("labels"), "raw": data})


def test_defaults_and_every_key():
    c = config_of({"task": "object-detection", "preprocess": {"size": [320, 256], "resize": "letterbox",
                                                              "color": "BGR", "layout": "NHWC", "scale": 1,
                                                              "mean": [1, 2, 3], "std": [4, 5, 6]},
                   "postprocess": {"format": "boxes-scores-classes", "score_threshold": 0.5, "max_detections": 3}})
    assert c.kind == "images" and c.image.size == (320, 256) and c.image.color == "BGR" and c.image.std == (4, 5, 6)
    assert c.post.format == "boxes-scores-classes" and c.post.max_detections == 3 and c.post.iou_threshold == 0.45
    t = config_of({"task": "embeddings", "tokenizer": {"max_length": 16, "truncate": False},
                   "embedding": {"pooling": "cls"}})
    assert t.kind == "texts" and t.tokenizer == TokenizerConfig(max_length=16, truncate=False)
    assert t.embedding.pooling == "cls" and t.embedding.normalize is True


@pytest.mark.parametrize(("data", "key"), [
    ({"task": "image-classification", "preprocess": {"size": [32]}}, "preprocess.size"),
    ({"task": "image-classification", "preprocess": {"resize": "zoom"}}, "preprocess.resize"),
    ({"task": "image-classification", "preprocess": {"std": [1, 0, 1]}}, "preprocess.std"),
    ({"task": "image-classification", "preprocess": {"sizes": [1, 1]}}, "preprocess.sizes"),
    ({"task": "object-detection", "postprocess": {"format": "ssd"}}, "postprocess.format"),
    ({"task": "object-detection", "postprocess": {"iou_threshold": 2}}, "postprocess.iou_threshold"),
    ({"task": "image-classification", "postprocess": {"top_k": 0}}, "postprocess.top_k"),
    ({"task": "text-classification", "tokenizer": {"truncate": "yes"}}, "tokenizer.truncate"),
    ({"task": "embeddings", "embedding": {"pooling": "max"}}, "embedding.pooling"),
    ({"task": "raw", "preprocess": {"size": [1, 1]}}, "preprocess"),
    ({"task": "image-classification", "tokenizer": {"max_length": 3}}, "tokenizer"),
])
def test_bad_tables_name_their_key(data, key):
    with pytest.raises(ValidationFailedError) as e:
        config_of(data)
    assert e.value.code == "bad_manifest" and e.value.details["key"] == key


def sig(inputs, outputs) -> Signature:
    return Signature([TensorSpec(n, d, s) for n, d, s in inputs], [TensorSpec(n, d, s) for n, d, s in outputs])


def problems(data: dict, signature: Signature, tmp_path: Path) -> list[str]:
    with pytest.raises(ValidationFailedError) as e:
        check_task(parse_manifest(data, tmp_path), signature, tmp_path)
    assert e.value.code == "task_mismatch"
    return e.value.details["problems"]


def test_image_checks(tmp_path):
    tm.image_classifier(tmp_path / "model.onnx")
    good = sig([("images", "FP32", [-1, 3, 32, 32])], [("logits", "FP32", [-1, 3])])
    ok = check_task(parse_manifest({"task": "image-classification", "preprocess": {"size": [32, 32]}}, tmp_path),
                    good, tmp_path)
    assert ok.labels is None
    two = sig([("a", "FP32", [-1, 3, 32, 32]), ("b", "FP32", [-1, 3, 32, 32])], [("y", "FP32", [-1, 3])])
    assert "exactly one 4-D input" in problems({"task": "image-classification"}, two, tmp_path)[0]
    flat = sig([("x", "FP32", [-1, 10])], [("y", "FP32", [-1, 3])])
    assert "4-D" in problems({"task": "image-classification"}, flat, tmp_path)[0]
    found = problems({"task": "image-classification", "labels": ["a"], "preprocess": {"size": [64, 64]}},
                     sig([("images", "UINT8", [-1, 3, 32, 32])], [("logits", "FP32", [-1, 3, 1])]), tmp_path)
    assert len(found) == 3 and "UINT8" in found[0] and "[64, 64]" in found[1] and "[batch, classes]" in found[2]


def test_detection_checks(tmp_path):
    tm.yolo_detector(tmp_path / "model.onnx")
    data = {"task": "object-detection", "labels": ["a", "b", "c"], "preprocess": {"size": [64, 64]}}
    yolo = sig([("images", "FP32", [-1, 3, 64, 64])], [("output0", "FP32", [-1, 6, 6])])
    assert "has 2 classes but 3 labels" in problems(data, yolo, tmp_path)[0]
    flat = sig([("images", "FP32", [-1, 3, 64, 64])], [("output0", "FP32", [-1, 6])])
    assert "boxes-scores-classes?" in problems(data, flat, tmp_path)[0]
    bsc = {**data, "postprocess": {"format": "boxes-scores-classes"}}
    wrong = sig([("images", "FP32", [-1, 3, 64, 64])], [("boxes", "FP32", [-1, 10, 5]), ("scores", "FP32", [-1, 10]),
                                                        ("classes", "INT64", [-1, 10, 1])])
    found = problems(bsc, wrong, tmp_path)
    assert len(found) == 2 and "[batch, n, 4]" in found[0] and "classes" in found[1]


def test_text_checks_and_padding_defaults(tmp_path):
    tm.text_classifier(tmp_path / "model.onnx")
    tm.tokenizer_json(tmp_path / "tokenizer.json")
    good = sig([("input_ids", "INT64", [-1, -1]), ("attention_mask", "INT64", [-1, -1])],
               [("logits", "FP32", [-1, 2])])
    checked = check_task(parse_manifest({"task": "text-classification"}, tmp_path), good, tmp_path)
    assert checked.batching.table == {"padded_inputs": {"input_ids": {"axis": 1, "value": 0},
                                                  "attention_mask": {"axis": 1, "value": 0}},
                                "padded_outputs": {}}
    bad = sig([("pixels", "FP32", [-1, 3]), ("attention_mask", "FP32", [-1, -1])], [("y", "FP32", [-1, 2, 2])])
    found = problems({"task": "text-classification", "tokenizer": {"file": "vocab.json"}}, bad, tmp_path)
    assert len(found) == 5
    assert "not a file in the bundle" in found[0] and "feeds input_ids" in found[1] and "pixels" in found[2]
    assert "FP32" in found[3] and "[batch, classes]" in found[4]


def test_labels_from_onnx_metadata(tmp_path):
    tm.image_classifier(tmp_path / "model.onnx", labels=["x", "y", "z"])
    assert metadata_labels(tmp_path / "model.onnx") == ["x", "y", "z"]
    good = sig([("images", "FP32", [-1, 3, 32, 32])], [("logits", "FP32", [-1, 3])])
    checked = check_task(parse_manifest({"task": "image-classification", "preprocess": {"size": [32, 32]}},
                                        tmp_path), good, tmp_path)
    assert checked.labels == ["x", "y", "z"]


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def test_decode_limits_and_formats():
    data = encoded(Image.new("RGB", (40, 30), (10, 20, 30)))
    assert images.decode(data, 1200).size == (40, 30)
    with pytest.raises(FlashMLError) as e:
        images.decode(data, 1199, index=2)
    assert (e.value.status, e.value.code, e.value.details) == (413, "image_too_large", {"item": 2})
    for bad in (b"", b"\x89PNG\r\n\x1a\n broken", encoded(Image.new("RGB", (8, 8)), "ICO")):
        with pytest.raises(FlashMLError) as e:
            images.decode(bad, 10_000)
        assert (e.value.status, e.value.code) == (415, "unsupported_image")
    truncated = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")[:300]
    with pytest.raises(FlashMLError) as e:
        images.decode(truncated, 10_000)
    assert e.value.code == "unsupported_image"


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center-crop"])
def test_placement_maps_input_pixels_back(resize):
    config = ImageConfig(size=(64, 96), resize=resize)
    fitted, place = images.fit(Image.new("RGB", (200, 100)), config)
    assert fitted.size == (96, 64)
    # the original image's corners land where the placement says, and map back to themselves
    corners = np.array([[0, 0, 200, 100]], float)
    forward = corners * [place.scale_x, place.scale_y, place.scale_x, place.scale_y] + \
        [place.offset_x, place.offset_y, place.offset_x, place.offset_y]
    assert place.to_original(forward) == pytest.approx(corners)
    if resize == "letterbox":
        assert (place.offset_x, place.offset_y, place.scale_x) == (0, 8, 0.48)
    if resize == "center-crop":
        assert (place.offset_x, place.scale_y) == (-16, 0.64)


def test_to_tensor_layout_color_and_normalization():
    image = Image.new("RGB", (2, 1), (255, 0, 51))
    chw = images.to_tensor(image, ImageConfig(size=(1, 2), mean=(0.5, 0, 0), std=(0.5, 1, 0.2)), np.dtype("float32"))
    assert chw.shape == (1, 3, 1, 2) and chw[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 1.0])
    nhwc = images.to_tensor(image, ImageConfig(size=(1, 2), color="BGR", layout="NHWC", scale=1), np.dtype("float16"))
    assert nhwc.shape == (1, 1, 2, 3) and nhwc.dtype == np.float16 and nhwc[0, 0, 0].tolist() == [51, 0, 255]


def test_nms_keeps_the_best_box_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    assert detection.nms(boxes, scores, classes, 0.5, 100) == [0, 2, 3]  # box 1 overlaps box 0 (IoU 0.68)
    assert detection.nms(boxes, scores, classes, 0.7, 100) == [0, 1, 2, 3]
    assert detection.nms(boxes, scores, classes, 0.5, 2) == [0, 2]


def test_boxes_scores_classes_format():
    outputs = {"boxes": np.array([[[10, 10, 20, 20], [11, 11, 21, 21], [0, 0, 5, 5]]], np.float32),
               "scores": np.array([[0.9, 0.8, 0.1]], np.float32), "classes": np.array([[1, 1, 0]], np.int64)}
    place = images.Placement(100, 100, 2.0, 2.0, 0.0, 0.0)
    found = detection.detect(outputs, PostConfig(format="boxes-scores-classes"), "boxes", place, ["a", "b"])
    assert found == [{"label": "b", "score": pytest.approx(0.9), "box": {"x1": 5, "y1": 5, "x2": 10, "y2": 10}}]


def test_text_encoder_truncates_or_refuses(tmp_path):
    tm.tokenizer_json(tmp_path / "tokenizer.json")
    signature = sig([("input_ids", "INT32", [-1, -1]), ("attention_mask", "INT64", [-1, -1])], [])
    encoder = TextEncoder(TokenizerConfig(max_length=4), tmp_path, signature)
    out = encoder.encode("good bad movie plot")
    assert out["input_ids"].tolist() == [tm.token_ids("good bad movie plot", 4)] and out["input_ids"].dtype == np.int32
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1]]
    strict = TextEncoder(TokenizerConfig(max_length=4, truncate=False), tmp_path, signature)
    assert strict.encode("good bad")["input_ids"].tolist() == [[2, 4, 5, 3]]
    with pytest.raises(FlashMLError) as e:
        strict.encode("good bad movie", index=3)
    assert (e.value.status, e.value.code, e.value.details["item"]) == (413, "text_too_long", 3)


def test_empty_text_is_refused(tmp_path):
    tm.tokenizer_json(tmp_path / "tokenizer.json")
    signature = sig([("input_ids", "INT64", [-1, -1])], [("y", "FP32", [-1, 5])])
    runtime = TaskRuntime.build(config_of({"task": "embeddings"}), signature, tmp_path)
    with pytest.raises(FlashMLError) as e:
        runtime.prepare(" ", 0, 100)
    assert e.value.code == "empty_text"


def test_yolov5_format_multiplies_objectness_into_class_scores():
    # [batch, anchors, 5 + classes]: cx, cy, w, h, objectness, two class scores
    pred = np.array([[[15, 15, 10, 10, 0.9, 0.2, 0.8],     # class 1: 0.72
                      [16, 16, 10, 10, 0.8, 0.1, 0.9],     # class 1: 0.72 * ..., overlaps the first: suppressed
                      [50, 50, 20, 20, 0.5, 0.9, 0.1],     # class 0: 0.45
                      [80, 80, 4, 4, 0.1, 0.5, 0.5]]],     # 0.05: under the threshold
                    np.float32)
    place = images.Placement(100, 100, 1.0, 1.0, 0.0, 0.0)
    found = detection.detect({"out": pred}, PostConfig(format="yolov5", score_threshold=0.25), "out", place,
                             ["a", "b"])
    # numpy reference: score = objectness * class score; x1y1x2y2 = cx -+ w/2
    assert [(f["label"], round(f["score"], 4)) for f in found] == [("b", 0.72), ("a", 0.45)]
    assert found[0]["box"] == {"x1": 10, "y1": 10, "x2": 20, "y2": 20}
    assert found[1]["box"] == {"x1": 40, "y1": 40, "x2": 60, "y2": 60}


def test_end_to_end_format_keeps_the_graphs_own_suppression():
    # [batch, k, 6]: x1, y1, x2, y2, score, class, as an export with NMS in the graph pads its rows
    pred = np.array([[[10, 10, 20, 20, 0.9, 1], [11, 11, 21, 21, 0.8, 1], [0, 0, 5, 5, 0.6, 0],
                      [0, 0, 0, 0, 0.0, 0]]], np.float32)
    place = images.Placement(100, 100, 2.0, 2.0, 0.0, 0.0)
    found = detection.detect({"det": pred}, PostConfig(format="end-to-end", score_threshold=0.5, max_detections=2),
                             "det", place, ["a", "b"])
    # No second suppression (the overlapping box of the same class stays), best first, at most max_detections.
    assert [(f["label"], f["score"]) for f in found] == [("b", pytest.approx(0.9)), ("b", pytest.approx(0.8))]
    assert found[0]["box"] == {"x1": 5, "y1": 5, "x2": 10, "y2": 10}


def test_the_new_detection_layouts_are_checked_against_the_model(tmp_path):
    data = {"task": "object-detection", "labels": ["a", "b"], "preprocess": {"size": [64, 64]}}
    v5 = {**data, "postprocess": {"format": "yolov5"}}
    e2e = {**data, "postprocess": {"format": "end-to-end"}}
    images_in = [("images", "FP32", [-1, 3, 64, 64])]
    check_task(parse_manifest(v5, tmp_path), sig(images_in, [("out", "FP32", [-1, 100, 7])]), tmp_path)
    check_task(parse_manifest(e2e, tmp_path), sig(images_in, [("det", "FP32", [-1, 100, 6])]), tmp_path)
    assert "has 4 classes but 2 labels" in problems(v5, sig(images_in, [("out", "FP32", [-1, 100, 9])]), tmp_path)[0]
    assert "axis 2 of det is 7, not 6" in problems(e2e, sig(images_in, [("det", "FP32", [-1, 100, 7])]), tmp_path)[0]
    assert "[batch, k, 6]" in problems(e2e, sig(images_in, [("det", "FP32", [-1, 6])]), tmp_path)[0]
