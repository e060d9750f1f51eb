"""Task predict helpers: the manifests (TOML) of the task test models, test images, and the reference
classifier (the same processing as the server's, written plainly in numpy)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.helpers import task_models as tm

CLS_TOML = """task = "image-classification"
[preprocess]
size = [32, 32]
resize = "center-crop"
mean = [0.5, 0.4, 0.3]
std = [0.2, 0.25, 0.3]
[postprocess]
top_k = 2
"""
DET_TOML = """task = "object-detection"
labels = ["cat", "dog"]
[preprocess]
size = [64, 64]
resize = "letterbox"
[postprocess]
format = "yolov8"
score_threshold = 0.3
iou_threshold = 0.4
"""
TXT_TOML = """task = "text-classification"
labels_file = "labels.txt"
[tokenizer]
max_length = 6
[postprocess]
top_k = 2
[batching]
max_batch_size = 8
max_queue_delay_us = 200000
"""
BSC_TOML = """task = "object-detection"
[preprocess]
size = [64, 64]
resize = "stretch"
[postprocess]
format = "boxes-scores-classes"
score_threshold = 0.2
iou_threshold = 0.5
"""
BGR_TOML = """task = "image-classification"
labels = ["r", "g", "b"]
[preprocess]
size = [32, 32]
resize = "stretch"
color = "BGR"
layout = "NHWC"
scale = 0.01
[postprocess]
activation = "sigmoid"
top_k = 3
"""
EMB_TOML = """task = "embeddings"
[tokenizer]
max_length = 8
truncate = false
[embedding]
pooling = "mean"
normalize = true
"""



def png(width: int, height: int, seed: int, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[: height // 2] //= 3  # not uniform: the crop and the letterbox change the channel means
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, fmt)
    return buf.getvalue()


def ref_pixels(data: bytes, size, resize, pad=114):
    """(HWC float pixels at the model's size, (scale_x, scale_y, dx, dy)) as the manifest describes."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    h, w = size
    w0, h0 = img.size
    if resize == "stretch":
        return np.asarray(img.resize((w, h), Image.BILINEAR), np.float32), (w / w0, h / h0, 0, 0)
    r = min(h / h0, w / w0) if resize == "letterbox" else max(h / h0, w / w0)
    nw, nh = round(w0 * r), round(h0 * r)
    resized = np.asarray(img.resize((nw, nh), Image.BILINEAR), np.float32)
    if resize == "letterbox":
        canvas = np.full((h, w, 3), pad, np.float32)
        dx, dy = (w - nw) // 2, (h - nh) // 2
        canvas[dy:dy + nh, dx:dx + nw] = resized
        return canvas, (nw / w0, nh / h0, dx, dy)
    left, top = (nw - w) // 2, (nh - h) // 2
    return resized[top:top + h, left:left + w], (nw / w0, nh / h0, -left, -top)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def ref_classify(data: bytes) -> list[tuple[int, float]]:
    pixels, _ = ref_pixels(data, (32, 32), "center-crop")
    x = (pixels / 255 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])
    scores = softmax(x.mean(axis=(0, 1)) @ tm.CLS_W + tm.CLS_B)
    order = np.argsort(-scores)[:2]
    return [(int(i), float(scores[i])) for i in order]
