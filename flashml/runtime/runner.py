"""How a loaded version executes a request. ``DirectRunner`` runs each request as it comes.

The dynamic batcher will be another ``Runner``: the pool and the API only see ``run``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
import onnxruntime as ort

from flashml.runtime.ort_io import needs_ortvalues, run_with_bf16


class Runner(Protocol):
    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]: ...

    async def close(self) -> None: ...


class ModelRuntimeError(Exception):
    """ONNX Runtime failed while running a request (the model's own message is kept)."""


class DirectRunner:
    def __init__(self, session: ort.InferenceSession, executor: ThreadPoolExecutor) -> None:
        self.session = session
        self.executor = executor
        self._run_session = (lambda i, o: run_with_bf16(session, i, o)) if needs_ortvalues(session) \
            else (lambda i, o: session.run(o, i))

    def _run(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        try:
            values = self._run_session(inputs, output_names)
        except Exception as exc:  # noqa: BLE001 - ORT raises many types; the caller gets its message
            raise ModelRuntimeError(str(exc)) from exc
        return dict(zip(output_names, values, strict=False))

    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        # ONNX Runtime releases the GIL while it runs, so the event loop stays free.
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._run, inputs, output_names)

    async def close(self) -> None:
        return None
