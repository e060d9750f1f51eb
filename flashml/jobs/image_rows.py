"""A chunk of a zip-of-images dataset through an image task model, with the predict endpoint's own processing.

Each image is decoded (Pillow, with ``predict_max_image_pixels``) and pre-processed by the version's
``TaskRuntime`` exactly as ``POST /api/v1/models/{model}/predict`` does; an image that cannot be read is a bad
row named by its file. The good images' tensors are stacked and scored through the batcher like any job rows,
and each image's slice of the outputs becomes its answer (top-k labels and scores, or boxes) by the same
``TaskRuntime.finish``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flashml.errors import FlashMLError
from flashml.tasks.runtime import TaskRuntime

Prepared = tuple[dict[str, np.ndarray], Any]  # one image's input tensors (batch of 1) and what finish needs


def prepare(runtime: TaskRuntime, names: list[str], data: list[bytes | str], start: int, max_pixels: int
            ) -> tuple[list[int], list[Prepared], list[tuple[int, str]]]:
    """(rows prepared, their tensors and contexts, bad rows as (row, why)); blocking: run it in a thread."""
    rows, prepared, bad = [], [], []
    for i, (name, item) in enumerate(zip(names, data, strict=True)):
        row = start + i
        if isinstance(item, str):  # the zip member itself could not be read
            bad.append((row, f"row {row} ({name!r}) {item}"))
            continue
        try:
            prepared.append(runtime.prepare(item, row, max_pixels))
        except FlashMLError as exc:
            bad.append((row, f"row {row} ({name!r}): {exc.message}"))
            continue
        rows.append(row)
    return rows, prepared, bad


def stack(prepared: list[Prepared]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[0][k] for p in prepared]) for k in prepared[0][0]}


def answers(runtime: TaskRuntime, outputs: dict[str, np.ndarray], prepared: list[Prepared]) -> list[Any]:
    """Each image's answer from its slice (a batch of one) of the stacked outputs."""
    return [runtime.finish({k: v[j:j + 1] for k, v in outputs.items()}, context)
            for j, (_inputs, context) in enumerate(prepared)]
