"""The GPU paths on a real GPU: CUDA sessions behind the batcher with I/O binding, TensorRT's engine cache and
FP16 switch, the fall-back to the CPU, and GPU memory counted at the peak batch with the budget evicting by it.

Run them with ``pytest -m gpu`` on a machine with an NVIDIA GPU, its driver, and the CUDA 13 and cuDNN 9
libraries (``pip install 'onnxruntime-gpu[cuda,cudnn]'``, or an installed PyTorch built for CUDA 13). Where
CUDA does not work (the CI machine) they are skipped; the same logic is covered there by
tests/unit/telemetry/test_gpu_memory.py with a stand-in for NVML's reading.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import onnxruntime as ort
import pytest

from flashml.registry.memory import MemoryService
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.devices import CPU, CUDA, TENSORRT, cuda_works
from flashml.runtime.executor import SessionExecutor
from flashml.runtime.pool import ModelPool
from flashml.runtime.runner import ModelRuntimeError
from flashml.runtime.sessions import SessionOptions, create_session
from flashml.signature import Signature, TensorSpec
from flashml.telemetry import gpu_memory
from tests.helpers import onnx_models

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not cuda_works(0), reason="needs a CUDA GPU, its driver, CUDA 13 and cuDNN 9")]

MiB = 1 << 20


def conv_signature(channels: int) -> Signature:
    return Signature([TensorSpec("x", "FP32", [-1, 3, -1, -1])], [TensorSpec("y", "FP32", [-1, channels])])


def images(rows: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal([rows, 3, size, size]).astype(np.float32)


def on_cpu(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=[CPU]).run(["y"], {"x": x})[0]


def test_a_cuda_session_serves_through_the_batcher_with_io_binding(tmp_path):
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=32, channels=16)
    pool = ModelPool("cuda:0")
    requests = [images(1, 32, seed) for seed in range(24)]

    async def serve():
        loaded = await pool.load("conv", 1, path, conv_signature(16),
                                 BatchingConfig(max_batch_size=8, max_queue_delay_us=20_000))
        try:
            answers = await asyncio.gather(*(loaded.run({"x": x}, ["y"]) for x in requests))
            return loaded, answers, loaded.batcher.stats()
        finally:
            await pool.close()

    loaded, answers, stats = asyncio.run(serve())
    assert loaded.device == "cuda:0" and loaded.providers[0] == CUDA and loaded.on_gpu
    executor = loaded.executors[0]
    assert executor._run.__func__ is SessionExecutor._run_bound  # I/O binding on CUDA
    assert max(stats["histogram"]) > 1, stats  # requests were batched together on the GPU
    for x, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer["y"], on_cpu(path, x), rtol=2e-2, atol=2e-3)  # TF32 on the GPU


def test_a_cuda_device_that_does_not_work_falls_back_to_the_cpu_with_a_warning(tmp_path, caplog):
    path = onnx_models.add_model(tmp_path / "add.onnx")
    pool = ModelPool("cuda:0")
    sig = Signature([TensorSpec("a", "FP32", [-1, 4]), TensorSpec("b", "FP32", [-1, 4])],
                    [TensorSpec("sum", "FP32", [-1, 4])])
    caplog.set_level(logging.WARNING, "flashml")

    async def load():
        loaded = await pool.load("add", 1, path, sig, BatchingConfig(), device="cuda:63")  # no such GPU
        out = await loaded.run({"a": np.ones([1, 4], np.float32), "b": np.ones([1, 4], np.float32)}, ["sum"])
        await pool.close()
        return loaded, out

    loaded, out = asyncio.run(load())
    assert loaded.device == "cpu" and loaded.providers == [CPU] and not loaded.on_gpu
    assert loaded.warnings == ["cuda:63 was asked for but CUDA does not work here; it runs on the CPU."]
    assert "device cuda:63 was asked for but CUDA does not work here" in caplog.text
    np.testing.assert_array_equal(out["sum"], np.full([1, 4], 2, np.float32))


def _tensorrt_session(path, cache, fp16: bool = False):
    opts = SessionOptions(tensorrt=True, tensorrt_fp16=fp16, trt_cache_dir=str(cache))
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    session = create_session(path, "cuda:0", opts)
    return session, time.perf_counter() - started


def _tensorrt_loads() -> bool:
    """TensorRT 10's libraries (libnvinfer) are installed: ONNX Runtime's provider then takes the session."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = onnx_models.add_model(Path(tmp) / "add.onnx")
        return TENSORRT in _tensorrt_session(path, Path(tmp) / "trt")[0].get_providers()


def test_tensorrt_that_cannot_load_falls_back_to_cuda_with_a_warning(tmp_path, caplog):
    if _tensorrt_loads():
        pytest.skip("TensorRT loads here: test_tensorrt_builds_an_engine_into_the_cache_and_reuses_it covers it")
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=32, channels=16)
    caplog.set_level(logging.WARNING, "flashml")
    session, _ = _tensorrt_session(path, tmp_path / "trt")
    assert session.get_providers()[0] == CUDA
    assert f"TensorRT could not run {path}; it runs on plain CUDA instead" in caplog.text
    x = images(2, 32)
    np.testing.assert_allclose(session.run(["y"], {"x": x})[0], on_cpu(path, x), rtol=2e-2, atol=2e-3)


def test_tensorrt_builds_an_engine_into_the_cache_and_reuses_it(tmp_path):
    if not _tensorrt_loads():
        pytest.skip("TensorRT 10's libraries (libnvinfer) are not installed on this GPU machine")
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=32, channels=16)
    cache = tmp_path / "data" / "cache" / "tensorrt"
    session, first = _tensorrt_session(path, cache)
    assert session.get_providers()[0] == TENSORRT
    x = images(4, 32)
    expected = on_cpu(path, x)
    np.testing.assert_allclose(session.run(["y"], {"x": x})[0], expected, rtol=2e-2, atol=2e-3)
    engines = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")}
    assert engines, sorted(p.name for p in cache.iterdir())
    del session
    again, second = _tensorrt_session(path, cache)  # a restart: the engine comes from the cache
    np.testing.assert_allclose(again.run(["y"], {"x": x})[0], expected, rtol=2e-2, atol=2e-3)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")} == engines
    assert second < first, (first, second)
    fp16, _ = _tensorrt_session(path, tmp_path / "fp16", fp16=True)  # FP16 on: a new engine, close answers
    np.testing.assert_allclose(fp16.run(["y"], {"x": x})[0], expected, rtol=5e-2, atol=5e-3)
    assert list((tmp_path / "fp16").glob("*.engine"))


@pytest.mark.skipif(gpu_memory._nvml() is None, reason="needs NVML (the NVIDIA driver's library)")
def test_gpu_memory_counts_the_peak_at_max_batch_size_and_the_budget_evicts_by_it(tmp_path):
    # 64 channels of 128x128 activations: 4 MiB an image per layer, so a batch of 64 needs hundreds of MiB.
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=128, channels=64)
    sig = Signature([TensorSpec("x", "FP32", [-1, 3, 128, 128])], [TensorSpec("y", "FP32", [-1, 64])])
    pool = ModelPool("cuda:0")

    async def not_reloaded(model, number):
        raise AssertionError("nothing is loaded on demand here")

    async def scenario():
        one = await pool.load("conv", 1, path, sig, BatchingConfig(max_batch_size=1))
        await one.warm_up()
        peak = await pool.load("conv", 2, path, sig, BatchingConfig(max_batch_size=64))
        await peak.warm_up()
        await pool.unload("conv", 1)
        budget = int(peak.gpu_memory_bytes * 1.5)
        memory = MemoryService(pool, str(budget), 10.0, not_reloaded)
        await memory.after_load(peak)
        other = await pool.load("conv", 3, path, sig, BatchingConfig(max_batch_size=64))
        await other.warm_up()
        await memory.after_load(other)
        left = sorted(v.version for v in pool.loaded())
        await pool.close()
        return one, peak, other, budget, memory, left

    one, peak, other, budget, memory, left = asyncio.run(scenario())
    assert (one.peak_batch, peak.peak_batch) == (1, 64)
    assert peak.gpu_memory_bytes - one.gpu_memory_bytes > 200 * MiB, (one.gpu_memory_bytes, peak.gpu_memory_bytes)
    assert peak.memory_bytes == peak.gpu_memory_bytes
    # Counted at batch 1 both would fit; at their peak they do not, and the least recently used one goes.
    assert 2 * one.gpu_memory_bytes < budget < peak.memory_bytes + other.memory_bytes
    assert left == [3] and memory.unloaded == {("conv", 2)}


def test_gpu_mem_limit_caps_a_sessions_arena(tmp_path):
    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=128, channels=64)
    opts = SessionOptions(gpu_budgets={"cuda:0": 256 * MiB})
    session = create_session(path, "cuda:0", opts, instances=2)
    assert session.get_provider_options()[CUDA]["gpu_mem_limit"] == str(128 * MiB)
    executor = SessionExecutor(session, "cuda:0")
    assert executor({"x": images(1, 128)}, ["y"])["y"].shape == (1, 64)
    with pytest.raises(ModelRuntimeError):  # 64 images need far more than 128 MiB: refused, not taken
        executor({"x": images(64, 128)}, ["y"])
    assert executor({"x": images(1, 128)}, ["y"])["y"].shape == (1, 64)  # and the session still serves


def test_a_version_of_fixed_batch_shapes_serves_on_cuda_with_a_session_per_size(tmp_path):
    from flashml.runtime.executor import BucketedExecutor

    path = onnx_models.conv_model(tmp_path / "conv.onnx", size=32, channels=16)
    pool = ModelPool("cuda:0")
    requests = [images(1 + i % 3, 32, seed=i) for i in range(30)]

    async def serve():
        loaded = await pool.load("conv", 1, path, conv_signature(16), BatchingConfig(
            max_batch_size=8, max_queue_delay_us=5000, batch_buckets=[1, 4, 8], preferred_batch_sizes=[4, 8],
            instance_count=2))
        try:
            return loaded, await asyncio.gather(*(loaded.run({"x": x}, ["y"]) for x in requests))
        finally:
            await pool.close()

    loaded, answers = asyncio.run(serve())
    for executor in loaded.executors:
        assert isinstance(executor, BucketedExecutor) and executor.sizes == [1, 4, 8]
        assert all(one.session.get_providers()[0] == CUDA for one in executor.executors.values())
        assert all(one._run.__func__ is SessionExecutor._run_bound for one in executor.executors.values())
    for x, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer["y"], on_cpu(path, x), rtol=2e-2, atol=2e-3)
