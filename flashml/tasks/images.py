"""Decode an uploaded image safely and turn it into the model's input tensor (and back to its pixels)."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from flashml.errors import BadRequestError, PayloadTooLargeError
from flashml.tasks.config import ImageConfig

FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


class UnsupportedImageError(BadRequestError):
    status = 415
    code = "unsupported_image"


@dataclass(frozen=True)
class Placement:
    """Where the original image sits in the model's input: input = original * scale + offset."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """x1, y1, x2, y2 rows in input pixels -> original image pixels, clipped to the image."""
        out = np.empty_like(boxes, dtype=np.float64)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.offset_x) / self.scale_x
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.offset_y) / self.scale_y
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.height)
        return out


# Pillow's messages name the Python object it read from ("cannot identify image file <_io.BytesIO object at
# 0x7f...>"): internal text that means nothing to the caller, and differs on every call.
_PYTHON_OBJECT = re.compile(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>")


def pillow_reason(exc: Exception, otherwise: str) -> str:
    """Why Pillow refused the bytes, in words for the caller: its message without Python object names, or
    ``otherwise`` when nothing else is left (an unidentified image says nothing more than that)."""
    if isinstance(exc, UnidentifiedImageError):
        return otherwise
    text = _PYTHON_OBJECT.sub("", str(exc)).strip()
    return text or otherwise


def decode(data: bytes, max_pixels: int, index: int = 0) -> Image.Image:
    """An RGB image, or 415 (not an image we read) / 413 (over ``max_pixels``) before decoding any pixel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        image = None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for bytes that are not an image
        raise UnsupportedImageError(f"Image {index} is not a JPEG, PNG, WebP, BMP, GIF or TIFF image "
                                    f"({pillow_reason(exc, 'its bytes match none of these formats')}).",
                                    details={"item": index}) from None
    if image is None or image.width * image.height > max_pixels:
        size = f"{image.width}x{image.height} = {image.width * image.height} pixels" if image else "too many pixels"
        raise PayloadTooLargeError(f"Image {index} has {size}; the limit is {max_pixels} (setting "
                                   "predict_max_image_pixels).", code="image_too_large", details={"item": index})
    try:
        image.load()
        return image.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
        raise UnsupportedImageError(f"Image {index} could not be decoded: "
                                    f"{pillow_reason(exc, 'its pixel data is damaged or cut short')}.",
                                    details={"item": index}) from None


def fit(image: Image.Image, config: ImageConfig) -> tuple[Image.Image, Placement]:
    """Resize to the model's size by stretch, letterbox (keep aspect, pad) or center-crop (keep aspect, cut)."""
    h, w = config.size
    w0, h0 = image.size
    if config.resize == "stretch":
        return image.resize((w, h), Image.Resampling.BILINEAR), Placement(w0, h0, w / w0, h / h0, 0.0, 0.0)
    r = min(h / h0, w / w0) if config.resize == "letterbox" else max(h / h0, w / w0)
    nw, nh = max(1, round(w0 * r)), max(1, round(h0 * r))
    resized = image.resize((nw, nh), Image.Resampling.BILINEAR)
    if config.resize == "letterbox":
        canvas = Image.new("RGB", (w, h), (config.pad_value,) * 3)
        dx, dy = (w - nw) // 2, (h - nh) // 2
        canvas.paste(resized, (dx, dy))
        return canvas, Placement(w0, h0, nw / w0, nh / h0, float(dx), float(dy))
    left, top = (nw - w) // 2, (nh - h) // 2
    return resized.crop((left, top, left + w, top + h)), Placement(w0, h0, nw / w0, nh / h0, -float(left), -float(top))


def to_tensor(image: Image.Image, config: ImageConfig, dtype: np.dtype) -> np.ndarray:
    """[1, C, H, W] or [1, H, W, C]: pixels * scale, then (x - mean) / std, in the configured channel order."""
    # Float32 throughout; numpy's stubs type float32 / float32 arrays as complex128, so no narrower dtype here.
    pixels: np.ndarray = np.asarray(image, dtype=np.float32)
    if config.color == "BGR":
        pixels = pixels[:, :, ::-1]
    pixels = (pixels * np.float32(config.scale) - np.asarray(config.mean, np.float32)) / np.asarray(config.std,
                                                                                                    np.float32)
    if config.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels[None], dtype=dtype)


def prepare(data: bytes, config: ImageConfig, dtype: np.dtype, max_pixels: int, index: int = 0
            ) -> tuple[np.ndarray, Placement]:
    """Bytes in, (input tensor, placement) out: the whole per-image work a worker thread does."""
    image, placement = fit(decode(data, max_pixels, index), config)
    return to_tensor(image, config, dtype), placement
