"""Boxes from a detector's outputs: decode the format, drop weak boxes, non-maximum suppression per class."""

from __future__ import annotations

import numpy as np

from flashml.tasks.classification import label_of
from flashml.tasks.config import PostConfig
from flashml.tasks.images import Placement


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one x1y1x2y2 box with each of ``others``."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Greedy NMS within each class: indices kept, best score first, at most ``limit``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(scores), dtype=bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        if len(keep) == limit:
            break
        rest = order[pos + 1:]
        same = rest[(classes[rest] == classes[i]) & ~suppressed[rest]]
        if len(same):
            suppressed[same[iou(boxes[i], boxes[same]) > iou_threshold]] = True
    return keep


def candidates(outputs: dict[str, np.ndarray], config: PostConfig, output: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes x1y1x2y2 in input pixels, scores, classes) of one image, from any supported format."""
    if config.format == "yolov8":
        pred = outputs[output][0].astype(np.float64)  # [4 + classes, anchors]
        cx, cy, w, h = pred[0], pred[1], pred[2], pred[3]
        cls_scores = pred[4:]
        classes = cls_scores.argmax(axis=0)
        scores = cls_scores[classes, np.arange(cls_scores.shape[1])]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return boxes, scores, classes
    if config.format == "yolov5":
        pred = outputs[output][0].astype(np.float64)  # [anchors, 5 + classes]: cx, cy, w, h, objectness, scores
        cx, cy, w, h, objectness = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3], pred[:, 4]
        cls_scores = pred[:, 5:] * objectness[:, None]  # a class's score is its own times the objectness
        classes = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(pred)), classes]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return boxes, scores, classes
    if config.format == "end-to-end":
        pred = outputs[output][0].astype(np.float64).reshape(-1, 6)  # [k, 6]: x1, y1, x2, y2, score, class
        return pred[:, :4], pred[:, 4], pred[:, 5].astype(np.int64)
    boxes = outputs["boxes"][0].astype(np.float64).reshape(-1, 4)
    return boxes, outputs["scores"][0].astype(np.float64).reshape(-1), \
        outputs["classes"][0].astype(np.int64).reshape(-1)


def detect(outputs: dict[str, np.ndarray], config: PostConfig, output: str, placement: Placement,
           labels: list[str] | None) -> list[dict]:
    """One image's detections in its own pixel coordinates: [{"label", "score", "box": {x1, y1, x2, y2}}]."""
    boxes, scores, classes = candidates(outputs, config, output)
    strong = scores >= config.score_threshold
    boxes, scores, classes = boxes[strong], scores[strong], classes[strong]
    if config.format == "end-to-end":  # the graph ran its own suppression: best first, at most max_detections
        keep = [int(i) for i in np.argsort(-scores, kind="stable")[: config.max_detections]]
    else:
        keep = nms(boxes, scores, classes, config.iou_threshold, config.max_detections)
    original = placement.to_original(boxes[keep]) if keep else np.zeros((0, 4))
    return [{"label": label_of(labels, int(classes[i])), "score": float(scores[i]),
             "box": {"x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]), "y2": float(b[3])}}
            for i, b in zip(keep, original, strict=True)]
