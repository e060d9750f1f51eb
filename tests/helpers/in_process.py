"""Helpers for in-process service tests: a fresh event loop, and versions published through the registry."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.helpers import onnx_models


def run(coro):
    """asyncio.run in a thread of its own: works even when a session fixture left a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _body(path: Path):
    yield path.read_bytes()


async def publish_offset_versions(registry: Any, folder: Path, offsets: tuple[int, ...] = (0, 100),
                                  model: str = "m") -> None:
    """Versions 1, 2, ... of ``model``, each adding its offset to its input (tell them apart by the answer)."""
    for offset in offsets:
        path = onnx_models.offset_add_model(folder / f"{offset}.onnx", offset)
        record, done = await registry.upload(model, _body(path), source_name=path.name, actor="t",
                                             content_length=None)
        assert done and record.state == "ready", record
