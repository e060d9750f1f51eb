"""The optional ``flashml.toml`` at a bundle's root: which task the model serves and how."""

from __future__ import annotations

import os
import posixpath
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashml.errors import BadRequestError, ValidationFailedError
from flashml.runtime.batching.hints import BatchingHints

MANIFEST_NAME = "flashml.toml"
TASKS = ("raw", "image-classification", "object-detection", "text-classification", "embeddings")
TABLES = ("batching", "preprocess", "postprocess", "tokenizer", "embedding", "warmup")
FILLS = ("zeros", "ones", "random")
MAX_WARMUP_ELEMENTS = 1 << 26  # one declared sample input at most (256 MB of floats)
KEYS = ("task", "model", "labels", "labels_file", *TABLES)
MAX_MANIFEST_BYTES = 4 << 20  # read whole and parsed into Python objects: a real one is a few KB
MAX_LABELS_BYTES = 64 << 20  # a labels file is read whole: a million long labels fit
MAX_DEPTH = 16  # tables and arrays inside each other; FlashML's own keys go 3 deep ([warmup.x] range = [..])


@dataclass(frozen=True)
class Manifest:
    task: str = "raw"
    model: str = "model.onnx"
    labels: list[str] | None = None
    labels_file: str | None = None
    batching: BatchingHints = field(default_factory=BatchingHints)  # [batching], checked when the file is read
    raw: dict[str, Any] = field(default_factory=dict)  # the whole parsed file; later stages read their tables
    # [warmup.<input>]: declared warm-up samples (Triton's model_warmup), checked: input name -> {"shape": [...],
    # "fill": ..., "range": [low, high]} or {"file": absolute path of a .npy inside the bundle}
    warmup: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        """One of the optional tables (``preprocess``, ``tokenizer``...), empty when absent."""
        return dict(self.raw.get(name) or {})

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as a version stores its manifest (``batching``: the table as written, filled in)."""
        return {"task": self.task, "model": self.model, "labels": self.labels, "labels_file": self.labels_file,
                "batching": dict(self.batching.table), "raw": self.raw, "warmup": self.warmup}


def _bad(key: str, why: str) -> ValidationFailedError:
    key = key if len(key) <= 200 else key[:200] + "..."  # keys come from the upload
    return ValidationFailedError(f"{MANIFEST_NAME}: {key!r} {why}.", code="bad_manifest", details={"key": key})


def _q(value: Any) -> str:
    """A value from the upload as a message quotes it: its repr, cut to a few hundred characters."""
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _too_deep(data: Any) -> bool:
    """True when tables or arrays nest past MAX_DEPTH (later steps copy and serialize the manifest recursively)."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return False


def _bundle_path(bundle_dir: Path, key: str, value: Any) -> str:
    """A relative path that stays inside the bundle, normalized to forward slashes."""
    if not isinstance(value, str) or not value:
        raise _bad(key, "must be a non-empty string")
    if "\\" in value or value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        raise _bad(key, "must be a relative path inside the bundle using '/'")
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../") or ".." in value.split("/"):
        raise _bad(key, "must not leave the bundle ('..')")
    root = os.path.realpath(bundle_dir)
    if not os.path.realpath(bundle_dir / norm).startswith(root + os.sep):
        raise _bad(key, "resolves outside the bundle")
    return norm


def _read_labels(bundle_dir: Path, rel: str) -> list[str]:
    path = bundle_dir / rel
    if path.is_symlink() or not path.is_file():
        raise _bad("labels_file", f"names {_q(rel)}, which is not a file in the bundle")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise _bad("labels_file", f"names a file larger than {MAX_LABELS_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise _bad("labels_file", f"names {_q(rel)}, which is not UTF-8 text") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_manifest(data: dict[str, Any], bundle_dir: Path) -> Manifest:
    """Check a parsed ``flashml.toml`` and turn it into a Manifest."""
    for key in data:
        if key not in KEYS:
            raise _bad(key, f"is not a known key (known: {', '.join(KEYS)})")
    task = data.get("task", "raw")
    if task not in TASKS:
        raise _bad("task", f"must be one of {', '.join(TASKS)}, not {_q(task)}")
    model = _bundle_path(bundle_dir, "model", data.get("model", "model.onnx"))
    for table in TABLES:
        if table in data and not isinstance(data[table], dict):
            raise _bad(table, "must be a table ([" + table + "])")
    labels = data.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise _bad("labels", "must be a list of strings")
    labels_file = None
    if "labels_file" in data:
        if labels is not None:
            raise _bad("labels_file", "cannot be given together with 'labels'")
        labels_file = _bundle_path(bundle_dir, "labels_file", data["labels_file"])
        labels = _read_labels(bundle_dir, labels_file)
    return Manifest(task=task, model=model, labels=list(labels) if labels is not None else None,
                    labels_file=labels_file, batching=_parse_batching(data.get("batching", {})), raw=data,
                    warmup=_parse_warmup(data.get("warmup", {}), bundle_dir))


def _parse_batching(table: dict[str, Any]) -> BatchingHints:
    """``[batching]`` checked now, before the model is: a bad setting fails the upload in a second."""
    try:
        return BatchingHints.from_table(table)
    except BadRequestError as exc:
        raise ValidationFailedError(f"{MANIFEST_NAME} [batching]: {exc.message}", code=exc.code,
                                    details=exc.details) from None


def _parse_warmup(table: dict[str, Any], bundle_dir: Path) -> dict[str, dict[str, Any]]:
    """``[warmup.<input>]`` tables: a shape with a fill, or a ``.npy`` file in the bundle (data, never code)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in table.items():
        key = f"warmup.{name}"
        if not isinstance(spec, dict):
            raise _bad(key, "must be a table: shape = [...] with fill, or file = \"samples/x.npy\"")
        unknown = set(spec) - {"shape", "fill", "range", "file"}
        if unknown:
            raise _bad(f"{key}.{sorted(unknown)[0]}", "is not a warm-up key (known: shape, fill, range, file)")
        if "file" in spec:
            if set(spec) != {"file"}:
                raise _bad(key, "takes either file, or shape with fill and range, not both")
            rel = _bundle_path(bundle_dir, f"{key}.file", spec["file"])
            if not rel.endswith(".npy") or not (bundle_dir / rel).is_file() or (bundle_dir / rel).is_symlink():
                raise _bad(f"{key}.file", f"names {_q(rel)}, which is not a .npy file in the bundle")
            out[name] = {"file": str(bundle_dir / rel)}
            continue
        shape = spec.get("shape")
        if not (isinstance(shape, list) and len(shape) <= 16
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise _bad(f"{key}.shape", "must be a list of whole numbers (the input's full shape, batch axis too)")
        elements = 1
        for d in shape:
            elements *= d
        if elements > MAX_WARMUP_ELEMENTS:
            raise _bad(f"{key}.shape", f"holds {elements} elements, more than the {MAX_WARMUP_ELEMENTS} allowed")
        fill = spec.get("fill", "zeros")
        if fill not in FILLS:
            raise _bad(f"{key}.fill", f"must be one of {', '.join(FILLS)}, not {_q(fill)}")
        low_high = spec.get("range", [0, 1])
        numbers = isinstance(low_high, list) and len(low_high) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in low_high)
        if not numbers or low_high[0] >= low_high[1]:
            raise _bad(f"{key}.range", "must be [low, high] with low below high")
        out[name] = {"shape": shape, "fill": fill, "range": [float(low_high[0]), float(low_high[1])]}
    return out


def load_manifest(bundle_dir: Path) -> Manifest:
    """The bundle's manifest, or the defaults (a raw model in ``model.onnx``) when it has none."""
    path = bundle_dir / MANIFEST_NAME
    if not path.exists() and not path.is_symlink():
        return Manifest()
    if path.is_symlink() or not path.is_file():
        raise _bad(MANIFEST_NAME, "must be a plain file")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise _bad(MANIFEST_NAME, f"is larger than {MAX_MANIFEST_BYTES} bytes; put long label lists in labels_file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValidationFailedError(f"{MANIFEST_NAME} is not valid TOML: {str(e)[:300]}. Fix the syntax and upload "
                                    "again.", code="bad_manifest", details={"key": None}) from e
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        data = None
    if data is None or _too_deep(data):
        raise ValidationFailedError(f"{MANIFEST_NAME} nests tables or arrays more than {MAX_DEPTH} levels deep; "
                                    "FlashML's keys need 3 at most.", code="bad_manifest", details={"key": None})
    return parse_manifest(data, bundle_dir)
