"""What a predict request carries: images (multipart files, a raw body, base64 in JSON) or texts (JSON)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from flashml.errors import BadRequestError, PayloadTooLargeError


class UnsupportedMediaError(BadRequestError):
    status = 415
    code = "unsupported_media_type"


@dataclass(frozen=True)
class PredictItems:
    kind: str  # "images" or "texts"
    items: list  # bytes per image, str per text


def _b64(value: object, index: int) -> bytes:
    if not isinstance(value, str):
        raise BadRequestError(f"images[{index}] must be a base64 string.", code="bad_base64", details={"item": index})
    if value.startswith("data:") and "," in value:  # a data URL, as a browser's FileReader gives
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError(f"images[{index}] is not valid base64.", code="bad_base64",
                              details={"item": index}) from None


def from_json(body: bytes) -> PredictItems:
    """``{"images": [base64, ...]}`` or ``{"texts": [str, ...]}``."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}.", code="bad_json") from None
    except RecursionError:
        raise BadRequestError("The body's JSON is nested too deeply.", code="bad_json") from None
    if not isinstance(data, dict) or len({"images", "texts"} & set(data)) != 1:
        raise BadRequestError('Send {"images": ["<base64>", ...]} or {"texts": ["...", ...]}.', code="no_items")
    kind = "images" if "images" in data else "texts"
    values = data[kind]
    if not isinstance(values, list):
        raise BadRequestError(f'"{kind}" must be a list.', code="no_items")
    if kind == "texts":
        for i, text in enumerate(values):
            if not isinstance(text, str):
                raise BadRequestError(f"texts[{i}] must be a string.", code="bad_text", details={"item": i})
        return PredictItems("texts", list(values))
    return PredictItems("images", [_b64(v, i) for i, v in enumerate(values)])


def from_body(content_type: str, body: bytes) -> PredictItems:
    """A raw image body (``image/*``) or JSON; multipart is read by the handler (see ``from_files``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("image/") or media == "application/octet-stream":
        return PredictItems("images", [body])
    if media in ("application/json", ""):
        return from_json(body)
    raise UnsupportedMediaError(f"Content type {media!r} is not accepted: send image/* (one image), "
                                "multipart/form-data (image files) or application/json (images in base64, or texts).")


def from_files(files: list[bytes]) -> PredictItems:
    return PredictItems("images", files)


def check_count(items: PredictItems, limit: int) -> None:
    if not items.items:
        raise BadRequestError(f"The request has no {items.kind}.", code="no_items")
    if len(items.items) > limit:
        raise PayloadTooLargeError(f"The request has {len(items.items)} {items.kind}; the limit is {limit} per call "
                                   "(setting predict_max_items).", code="too_many_items",
                                   details={"items": len(items.items), "limit": limit})
