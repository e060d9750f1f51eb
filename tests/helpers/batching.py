"""Batching tests without a model: a fake model that runs a batch only when let (``Gated``), requests tagged by
one number, and their answers."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from flashml.runtime.batching import Batcher
from flashml.runtime.runner import ModelRuntimeError


class Gated:
    """A fake model: each batch waits for one permit (``open(n)``), records its tags and thread, doubles x,
    and fails any batch holding a negative tag."""

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)
        self.batches: list[list[int]] = []
        self.threads: list[int] = []
        self.started = 0

    def open(self, n: int = 1) -> None:
        for _ in range(n):
            self.permits.release()

    def __call__(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        self.started += 1
        assert self.permits.acquire(timeout=10)
        tags = [int(t) for t in inputs["x"][:, 0]]
        self.batches.append(tags)
        self.threads.append(threading.get_ident())
        if min(tags) < 0:
            raise ModelRuntimeError("boom: negative input")
        return {name: inputs["x"] * 2 for name in output_names}


def x(tag: int) -> dict[str, np.ndarray]:
    return {"x": np.full((1, 2), tag, dtype=np.float32)}


async def until(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.001)


def submitter(batcher: Batcher):
    """submit(tag, **kwargs): queue one request on ``batcher`` and return its task once it is queued or running."""
    async def submit(tag: int, **kwargs) -> asyncio.Task:
        queued = batcher.stats()["queued"] + batcher.stats()["in_flight"]
        task = asyncio.create_task(batcher.run(x(tag), ["y"], **kwargs))
        await until(lambda: batcher.stats()["queued"] + batcher.stats()["in_flight"] > queued)
        return task
    return submit


async def answers(tasks) -> list:
    out = []
    for task in tasks:
        try:
            out.append(int((await task)["y"][0, 0]))
        except Exception as exc:  # noqa: BLE001 - the test compares the errors too
            out.append(type(exc).__name__)
    return out
