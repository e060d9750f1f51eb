"""What must never reach a person: Python's internals (object reprs, tracebacks) and grammar a template got wrong
("a image"); and the small models the checks of those answers and pages use."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from tests.helpers import onnx_models
from tests.helpers import task_models as tm
from tests.helpers.tasks import CLS_TOML
from tests.helpers.uploads import upload

# Python's own text: a repr with an address, a traceback, an object of the io module.
INTERNAL = ("<_io.", "object at 0x", "Traceback")
# "a" before a vowel sound a template or message put there by hand (an identifier after "a").
WRONG_ARTICLE = re.compile(r"\b[Aa] (image|object|embedding|error|alias|input|output)\b")
_TAG = re.compile(r"<[^>]+>")


def readable(body: str) -> str:
    """The text a person reads: tags dropped, entities decoded, white space collapsed."""
    return re.sub(r"\s+", " ", html.unescape(_TAG.sub("", body)))


def internal_text(body: str) -> list[str]:
    """The internal text found in an answer or a page (its raw text and its readable text); [] when clean."""
    found = [marker for marker in INTERNAL if marker in body or marker in html.unescape(body)]
    found += [m.group(0) for m in WRONG_ARTICLE.finditer(readable(body))]
    return found


def publish_image_classifier(api: httpx.Client, folder: Path, name: str) -> str:
    """An image-classification task model (tests/helpers/tasks.py's CLS_TOML) as ``name`` v1, ready."""
    path = tm.bundle(folder / f"{name}.tar.gz", CLS_TOML, tm.image_classifier(folder / f"{name}.onnx",
                                                                             labels=["red", "green", "blue"]))
    r = upload(api, name, path, filename="bundle.tar.gz")
    assert r.status_code == 201, r.text
    return name


def refuse_custom_operators(api: httpx.Client, folder: Path, name: str) -> httpx.Response:
    """An upload that becomes a failed version: the model uses an operator domain FlashML never loads."""
    r = upload(api, name, onnx_models.custom_domain_model(folder / f"{name}.onnx"))
    assert r.status_code == 422 and r.json()["code"] == "custom_op_domain", r.text
    return r
