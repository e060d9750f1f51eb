"""The loaded model versions of this process: load at publication and start-up, never per request."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flashml.runtime.runner import DirectRunner, Runner
from flashml.runtime.sessions import create_session
from flashml.signature import Signature


@dataclass
class LoadedModel:
    model: str
    version: int
    signature: Signature
    device: str
    providers: list[str]
    runner: Runner
    in_flight: int = 0
    last_used: float = 0.0  # time.time() of the last request
    requests: int = 0
    loaded_at: float = field(default_factory=time.time)

    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        self.in_flight += 1
        self.requests += 1
        self.last_used = time.time()
        try:
            return await self.runner.run(inputs, output_names)
        finally:
            self.in_flight -= 1


class ModelPool:
    def __init__(self, device: str, intra_op_threads: int = 0) -> None:
        self.device = device
        self.intra_op_threads = intra_op_threads
        self.executor = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 1), thread_name_prefix="ort")
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = asyncio.Lock()  # session creation is not thread-safe: one at a time

    async def load(self, model: str, version: int, model_path: Path, signature: Signature) -> LoadedModel:
        async with self._lock:
            existing = self._loaded.get((model, version))
            if existing is not None:
                return existing
            session = await asyncio.to_thread(create_session, model_path, self.device, self.intra_op_threads)
            loaded = LoadedModel(model, version, signature, self.device, session.get_providers(),
                                 DirectRunner(session, self.executor))
            self._loaded[(model, version)] = loaded
            return loaded

    def get(self, model: str, version: int) -> LoadedModel | None:
        return self._loaded.get((model, version))

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    async def unload(self, model: str, version: int) -> None:
        loaded = self._loaded.pop((model, version), None)
        if loaded is not None:
            await loaded.runner.close()

    async def close(self) -> None:
        for key in list(self._loaded):
            await self.unload(*key)
        self.executor.shutdown(wait=False, cancel_futures=True)
