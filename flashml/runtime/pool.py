"""The loaded model versions of this process: load at publication and start-up, never per request.

Each version is served by a ``Batcher`` (Triton's dynamic batching) in front of its execution instances.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flashml.metrics.memory import growth, rss_bytes
from flashml.runtime.batching import Batcher, BatchingConfig
from flashml.runtime.devices import CUDA, resolve_device
from flashml.runtime.executor import SessionExecutor
from flashml.runtime.sessions import SessionOptions, create_session
from flashml.signature import Signature


@dataclass
class LoadedModel:
    model: str
    version: int
    signature: Signature
    device: str
    providers: list[str]
    batcher: Batcher
    executors: list[SessionExecutor]
    config: BatchingConfig
    warnings: list[str] = field(default_factory=list)
    in_flight: int = 0
    last_used: float = 0.0  # time.time() of the last request
    requests: int = 0
    loaded_at: float = field(default_factory=time.time)
    # Growth of this process's RSS while the sessions were created: approximate (other threads allocate too).
    host_memory_bytes: int | None = None

    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str], **scheduling: Any
                  ) -> dict[str, np.ndarray]:
        """Queue one request (scheduling: key, weight, priority, timeout_us) and wait for its outputs."""
        self.in_flight += 1
        self.requests += 1
        self.last_used = time.time()
        try:
            return await self.batcher.run(inputs, output_names, **scheduling)
        finally:
            self.in_flight -= 1

    def reconfigure(self, config: BatchingConfig) -> None:
        self.batcher.reconfigure(config)
        self.config = config


class ModelPool:
    def __init__(self, device: str, options: SessionOptions = SessionOptions()) -> None:
        self.device = device
        self.options = options
        self.executor = ThreadPoolExecutor(max_workers=max(8, 2 * (os.cpu_count() or 1)), thread_name_prefix="ort")
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = asyncio.Lock()  # session creation is not thread-safe: one at a time

    async def load(self, model: str, version: int, model_path: Path, signature: Signature,
                   config: BatchingConfig, device: str | None = None) -> LoadedModel:
        """Create the version's instances and its batcher (replacing a loaded one, as a PATCH needs)."""
        async with self._lock:
            want = resolve_device(device) if device else self.device
            executors = []
            rss_before = rss_bytes()
            for _ in range(config.instance_count):
                session = await asyncio.to_thread(create_session, model_path, want, self.options,
                                                  config.instance_count)
                executors.append(SessionExecutor(session, want))
            providers = executors[0].session.get_providers()
            warnings = []
            if want.startswith("cuda") and CUDA not in providers:
                warnings.append(f"{want} was asked for but CUDA could not run this model; it runs on the CPU.")
            if device and device.startswith("cuda") and not want.startswith("cuda"):
                warnings.append(f"{device} was asked for but CUDA does not work here; it runs on the CPU.")
            loaded = LoadedModel(model, version, signature, want, providers,
                                 Batcher(executors, config, self.executor, name=f"{model}/v{version}"),
                                 executors, config, warnings, host_memory_bytes=growth(rss_before, rss_bytes()))
            old = self._loaded.get((model, version))
            self._loaded[(model, version)] = loaded
        if old is not None:  # a reload: let requests already queued on the old instances finish first
            deadline = time.monotonic() + 30
            while old.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await old.batcher.close()
        return loaded

    def get(self, model: str, version: int) -> LoadedModel | None:
        return self._loaded.get((model, version))

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    async def unload(self, model: str, version: int) -> None:
        loaded = self._loaded.pop((model, version), None)
        if loaded is not None:
            await loaded.batcher.close()

    async def close(self) -> None:
        for key in list(self._loaded):
            await self.unload(*key)
        self.executor.shutdown(wait=False, cancel_futures=True)
