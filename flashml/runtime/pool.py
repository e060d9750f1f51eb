"""The loaded model versions of this process: load at publication and start-up, never per request.

Each version is served by a ``Batcher`` (Triton's dynamic batching) in front of its execution instances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flashml.runtime.autotune import batchable, dummy_inputs
from flashml.runtime.batching import Batcher, BatchingConfig
from flashml.runtime.devices import CUDA, TENSORRT, resolve_device
from flashml.runtime.executor import BucketedExecutor, SessionExecutor
from flashml.runtime.sessions import SessionOptions, create_session, wide_instance
from flashml.signature import Signature
from flashml.telemetry import gpu_memory
from flashml.telemetry.memory import growth, rss_bytes

log = logging.getLogger("flashml.runtime")
DRAIN_TIMEOUT_S = 30.0  # the longest an unload waits for the requests a version is answering
WARM_UP_KEY = "flashml/warm-up"


@dataclass
class LoadedModel:
    model: str
    version: int
    signature: Signature
    device: str
    providers: list[str]
    batcher: Batcher
    executors: list[SessionExecutor | BucketedExecutor]
    config: BatchingConfig
    model_path: Path
    warnings: list[str] = field(default_factory=list)
    in_flight: int = 0
    last_used: float = 0.0  # time.time() of the last request
    requests: int = 0
    loaded_at: float = field(default_factory=time.time)
    # Growth of this process's RSS while the sessions were created: approximate (other threads allocate too).
    host_memory_bytes: int | None = None
    # Growth of this process's GPU memory from before the sessions were created to after the warm-up (which
    # grows ONNX Runtime's arena): None on the CPU or where NVML cannot be read (flashml.telemetry.gpu_memory).
    gpu_memory_bytes: int | None = None
    gpu_baseline: int | None = None  # the GPU reading before the sessions were created
    gpu_reader: Callable[[str], int | None] | None = None
    file_bytes: int = 0  # the version's files on disk: a floor for what it holds once loaded
    warmed: bool = False  # has answered once (a warm-up request, or a real one)
    peak_batch: int = 0  # the rows of the warm-up batch the GPU memory was measured after (0: not measured)

    @property
    def memory_bytes(self) -> int:
        """What counts against the device's memory budget: the measured growth on that device (GPU memory for
        a version on a GPU, when it could be read), at least the files' size."""
        held = self.gpu_memory_bytes if self.gpu_memory_bytes is not None else self.host_memory_bytes
        return max(held or 0, self.file_bytes)

    @property
    def on_gpu(self) -> bool:
        """Its sessions really run on CUDA or TensorRT (a CUDA device that fell back to the CPU does not)."""
        return CUDA in self.providers or TENSORRT in self.providers

    def measure_gpu(self) -> None:
        """Read the GPU memory this version grew by since before its sessions were created."""
        if self.gpu_baseline is not None and self.gpu_reader is not None:
            self.gpu_memory_bytes = growth(self.gpu_baseline, self.gpu_reader(self.device))

    async def run(self, inputs: dict[str, np.ndarray], output_names: list[str], **scheduling: Any
                  ) -> dict[str, np.ndarray]:
        """Queue one request (scheduling: key, weight, priority, timeout_us) and wait for its outputs."""
        self.in_flight += 1
        self.requests += 1
        self.last_used = time.time()
        try:
            outputs = await self.batcher.run(inputs, output_names, **scheduling)
            self.warmed = True
            return outputs
        finally:
            self.in_flight -= 1

    def warm_up_rows(self) -> int:
        """Rows of the warm-up batch: on a GPU whose memory is counted, the largest batch the batcher can form
        (``max_batch_size``), so the reading after it holds the peak of ONNX Runtime's arena, which keeps what
        it grew to; elsewhere one row (a CPU warm-up at the largest batch would cost seconds for nothing)."""
        if self.gpu_baseline is not None and batchable(self.signature) and self.config.max_batch_size > 1:
            return self.config.max_batch_size
        return 1

    async def warm_up(self) -> None:
        """Run one request of placeholder inputs through the version (once), so its first caller does not pay
        for ONNX Runtime's first-run allocations, then read its GPU memory at that peak. A model that refuses
        them still serves: it is logged."""
        if self.warmed:
            return
        rows = self.warm_up_rows()
        try:
            await self.batcher.run(dummy_inputs(self.signature, rows), [o.name for o in self.signature.outputs],
                                   key=WARM_UP_KEY, priority=1)
        except Exception as exc:  # noqa: BLE001 - placeholder inputs are not every model's inputs
            log.warning("warm-up of %s v%d with placeholder inputs (%d rows) failed: %s", self.model, self.version,
                        rows, exc)
        self.warmed = True
        if self.gpu_baseline is not None:
            self.peak_batch = rows
            await asyncio.to_thread(self.measure_gpu)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait until the requests this version is answering are done (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def reconfigure(self, config: BatchingConfig) -> None:
        self.batcher.reconfigure(config)
        self.config = config


class ModelPool:
    def __init__(self, device: str, options: SessionOptions = SessionOptions(),
                 gpu_reader: Callable[[str], int | None] = gpu_memory.used_bytes, *, inline_run_s: float = 0.0
                 ) -> None:
        self.device = device
        self.inline_run_s = inline_run_s  # batches cheaper than this run on the event loop (setting inline_run_us)
        self.options = options
        self.gpu_reader = gpu_reader  # this process's GPU memory on a device (NVML), None where unknown
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = asyncio.Lock()  # session creation is not thread-safe: one at a time

    async def load(self, model: str, version: int, model_path: Path, signature: Signature,
                   config: BatchingConfig, device: str | None = None) -> LoadedModel:
        """Create the version's instances and its batcher (replacing a loaded one, as a PATCH needs)."""
        async with self._lock:
            want = resolve_device(device) if device else self.device
            executors: list[SessionExecutor | BucketedExecutor] = []
            rss_before = rss_bytes()
            gpu_before = await asyncio.to_thread(self.gpu_reader, want) if want.startswith("cuda") else None
            for _ in range(config.instance_count):
                if config.batch_buckets:
                    executors.append(await self._bucketed(model_path, want, config, signature))
                else:
                    executors.append(await self._instance(model_path, want, config.instance_count))
            wide = None
            if wide_instance(self.options.intra_op_threads, config.instance_count, want):
                wide = await self._instance(model_path, want)  # all the cores, for a batch that comes alone
            session = executors[0].session
            if session is None:  # a bucketed instance made above holds sessions: never expected
                raise RuntimeError(f"{model} v{version}: its first instance has no ONNX Runtime session")
            providers = session.get_providers()
            warnings = []
            if want.startswith("cuda") and CUDA not in providers:
                warnings.append(f"{want} was asked for but CUDA could not run this model; it runs on the CPU.")
            if device and device.startswith("cuda") and not want.startswith("cuda"):
                warnings.append(f"{device} was asked for but CUDA does not work here; it runs on the CPU.")
            loaded = LoadedModel(model, version, signature, want, providers,
                                 Batcher(executors, config, name=f"{model}/v{version}",
                                         inline_run_s=self.inline_run_s, wide=wide),
                                 executors, config, model_path, warnings,
                                 host_memory_bytes=growth(rss_before, rss_bytes()),
                                 file_bytes=_folder_bytes(model_path.parent))
            if gpu_before is not None and loaded.on_gpu:
                loaded.gpu_baseline, loaded.gpu_reader = gpu_before, self.gpu_reader
                await asyncio.to_thread(loaded.measure_gpu)  # the weights; the warm-up reads again
            old = self._loaded.get((model, version))
            self._loaded[(model, version)] = loaded
        if old is not None:  # a reload: let requests already queued on the old instances finish first
            await old.drain()
            await old.batcher.close()
            if loaded.gpu_baseline is not None and old.device == loaded.device and old.gpu_memory_bytes:
                # The baseline was read while the old instances still held their share; it is gone now.
                loaded.gpu_baseline = max(0, loaded.gpu_baseline - old.gpu_memory_bytes)
        return loaded

    async def split_trial(self, loaded: LoadedModel, instances: int) -> list[SessionExecutor]:
        """Sessions of a loaded version that split the cores ``instances`` ways, for auto-tune to compare with
        the one it serves from; nothing serves from them."""
        async with self._lock:
            return [await self._instance(loaded.model_path, loaded.device, instances) for _ in range(instances)]

    async def _instance(self, model_path: Path, device: str, instances: int = 1) -> SessionExecutor:
        """One execution instance of ``instances`` sharing ``device`` (sessions are created in a worker thread)."""
        return SessionExecutor(await asyncio.to_thread(create_session, model_path, device, self.options, instances),
                               device)

    async def _bucketed(self, model_path: Path, device: str, config: BatchingConfig, signature: Signature
                        ) -> BucketedExecutor:
        """An instance of fixed batch shapes: a session per size in ``batch_buckets``, each run once at its size
        (so its plans are made before the first request, and the GPU reading after the warm-up holds them)."""
        executor = BucketedExecutor({size: await self._instance(model_path, device, config.instance_count)
                                     for size in config.batch_buckets})
        outputs = [o.name for o in signature.outputs]
        for size, one in executor.executors.items():
            try:
                await asyncio.to_thread(one, dummy_inputs(signature, size), outputs)
            except Exception as exc:  # noqa: BLE001 - placeholder inputs are not every model's inputs
                log.warning("warming %s at batch %d with placeholder inputs failed: %s", model_path, size, exc)
        return executor

    def get(self, model: str, version: int) -> LoadedModel | None:
        return self._loaded.get((model, version))

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    async def unload(self, model: str, version: int) -> None:
        """Take the version out of service at once (no new request finds it), then let the requests it is
        answering finish before its instances close: an unload fails none of them."""
        loaded = self._loaded.pop((model, version), None)
        if loaded is not None:
            await loaded.drain()
            await loaded.batcher.close()

    async def close(self) -> None:
        """At shutdown: no draining (the server stopped taking requests); a running batch still answers."""
        for key in list(self._loaded):
            loaded = self._loaded.pop(key)
            await loaded.batcher.close()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
