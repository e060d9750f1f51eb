"""What the console shows of a task model: its task and settings, and its predictions in the playground."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flashml.errors import FlashMLError
from flashml.tasks.config import describe, parse_task

MAX_LABELS_SHOWN = 20
MAX_VECTOR_SHOWN = 16


def task_view(version: dict[str, Any] | None) -> dict[str, Any] | None:
    """A version's task and its settings as (name, value) rows; None for a raw tensor model."""
    manifest = (version or {}).get("manifest") or {}
    if manifest.get("task", "raw") == "raw":
        return None
    try:
        described = describe(parse_task(manifest))
    except FlashMLError:  # stored before today's checks: show the task, not a broken page
        return {"task": manifest.get("task"), "rows": [], "labels": manifest.get("labels")}
    rows = []
    for table in ("preprocess", "postprocess", "tokenizer", "embedding"):
        for key, value in (described.get(table) or {}).items():
            if value is not None:
                rows.append((f"{table}.{key}", json.dumps(list(value) if isinstance(value, tuple) else value)))
    labels = described.get("labels")
    return {"task": described["task"], "rows": rows, "labels": labels,
            "labels_shown": ", ".join(labels[:MAX_LABELS_SHOWN]) if labels else "",
            "labels_more": max(0, len(labels) - MAX_LABELS_SHOWN) if labels else 0,
            "kind": "texts" if described["task"] in ("text-classification", "embeddings") else "images"}


def shown_vector(vector: list[float]) -> dict[str, Any]:
    """An embedding for the result panel: its size and first values."""
    return {"dim": len(vector), "head": ", ".join(f"{v:.4f}" for v in vector[:MAX_VECTOR_SHOWN]),
            "more": max(0, len(vector) - MAX_VECTOR_SHOWN)}


def predict_curl(base_url: str, model: str, kind: str) -> str:
    """The curl line for a task model's predict endpoint."""
    url = f"{base_url}/v1/models/{quote(model, safe='')}/predict"
    if kind == "images":
        return f'curl -sS -H "Authorization: Bearer $FLASHML_KEY" -F image=@photo.jpg \\\n  {url}'
    return (f'curl -sS -H "Authorization: Bearer $FLASHML_KEY" -H "Content-Type: application/json" \\\n'
            f"  -d '{{\"texts\": [\"a first text\", \"a second one\"]}}' \\\n  {url}")
