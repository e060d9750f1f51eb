"""GPU memory per loaded version: read through NVML, counted from before the sessions to after the warm-up.

The CI machine has no GPU and no NVIDIA driver: there the readings are None and the GPU's growth is checked
with a stand-in for NVML's reading (NVML is the driver's, not ours). The last test loads a version on a real
GPU, where one works.
"""

from __future__ import annotations

import asyncio

import pytest

from flashml.runtime.batching import BatchingConfig
from flashml.runtime.devices import cuda_works
from flashml.runtime.pool import ModelPool
from flashml.signature import Signature, TensorSpec
from flashml.telemetry import gpu_memory
from tests.helpers import onnx_models

MiB = 1 << 20
ADD = Signature([TensorSpec("a", "FP32", [-1, 4]), TensorSpec("b", "FP32", [-1, 4])],
                [TensorSpec("sum", "FP32", [-1, 4])])  # tests/onnx_models.add_model


def test_cuda_device_numbers_follow_cuda_visible_devices():
    assert gpu_memory.nvml_index("cpu", None) is None
    assert gpu_memory.nvml_index("cuda:1", "3,1") == 1
    assert gpu_memory.nvml_index("cuda:0", "3,1") == 3
    assert gpu_memory.nvml_index("cuda", "GPU-8a1b, GPU-77") == "GPU-8a1b"
    assert gpu_memory.nvml_index("cuda:2", "3,1") is None  # not visible to CUDA
    assert gpu_memory.nvml_index("cuda:0", "") is None  # CUDA sees no device


def test_no_reading_on_the_cpu_or_without_a_driver():
    assert gpu_memory.used_bytes("cpu") is None
    reading = gpu_memory.used_bytes("cuda:0")
    if gpu_memory._nvml() is None:  # no NVIDIA driver (the CI machine)
        assert reading is None
    else:
        assert isinstance(reading, int) and reading >= 0


class FakeNvml:
    """NVML's reading of this process's GPU memory, grown by what the test says the GPU took."""

    def __init__(self) -> None:
        self.used = 500 * MiB
        self.asked: list[str] = []

    def __call__(self, device: str) -> int:
        self.asked.append(device)
        return self.used


def _load(pool: ModelPool, tmp_path, number: int = 1, config: BatchingConfig = BatchingConfig()):
    path = onnx_models.add_model(tmp_path / f"add{number}.onnx")
    return asyncio.run(pool.load("m", number, path, ADD, config))


def _as_if_on_a_gpu(loaded, nvml: FakeNvml) -> None:
    """What the pool records for a version whose sessions run on CUDA: the reading before they were made."""
    loaded.device, loaded.gpu_baseline, loaded.gpu_reader = "cuda:0", nvml.used, nvml
    loaded.warmed = False


def test_a_version_on_a_gpu_counts_its_growth_through_the_warm_up(tmp_path):
    nvml = FakeNvml()
    loaded = _load(ModelPool("cpu", gpu_reader=nvml), tmp_path)
    assert loaded.gpu_memory_bytes is None and nvml.asked == []  # on the CPU the GPU is never read
    _as_if_on_a_gpu(loaded, nvml)
    nvml.used += 300 * MiB  # weights and the arena the warm-up grew
    asyncio.run(loaded.warm_up())
    assert loaded.gpu_memory_bytes == 300 * MiB and nvml.asked == ["cuda:0"]
    assert loaded.memory_bytes == 300 * MiB  # the GPU's share is what counts against the cuda:0 budget
    nvml.used -= 400 * MiB  # another version freed more than this one holds: never negative
    loaded.measure_gpu()
    assert loaded.gpu_memory_bytes == 0 and loaded.memory_bytes == loaded.file_bytes


def test_on_a_gpu_the_warm_up_runs_the_largest_batch_so_the_reading_holds_the_peak(tmp_path):
    nvml = FakeNvml()
    config = BatchingConfig(max_batch_size=8, max_queue_delay_us=100)
    path = onnx_models.add_model(tmp_path / "add.onnx")

    async def scenario():
        pool = ModelPool("cpu", gpu_reader=nvml)
        on_cpu = await pool.load("m", 1, path, ADD, config)
        await on_cpu.warm_up()
        loaded = await pool.load("m", 2, path, ADD, config)
        _as_if_on_a_gpu(loaded, nvml)
        rows = loaded.warm_up_rows()
        nvml.used += 700 * MiB  # ONNX Runtime's arena after a batch of 8
        await loaded.warm_up()
        stats = on_cpu.batcher.stats()["histogram"], loaded.batcher.stats()["histogram"]
        loaded.reconfigure(BatchingConfig(max_batch_size=0))  # no batching: one row is the peak
        await pool.close()
        return on_cpu, loaded, rows, stats

    on_cpu, loaded, rows, (cpu_batches, gpu_batches) = asyncio.run(scenario())
    assert cpu_batches == {1: 1} and on_cpu.peak_batch == 0  # on the CPU the warm-up is one row
    assert rows == 8 and gpu_batches == {8: 1}  # one batch of max_batch_size rows, not one row
    assert loaded.peak_batch == 8 and loaded.memory_bytes == 700 * MiB
    assert loaded.warm_up_rows() == 1


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_works(0) or gpu_memory._nvml() is None, reason="needs a CUDA GPU and its driver")
def test_a_version_loaded_on_a_real_gpu_reports_its_gpu_memory(tmp_path):
    pool = ModelPool("cuda:0")
    path = onnx_models.add_model(tmp_path / "add.onnx")

    async def load():
        loaded = await pool.load("m", 1, path, ADD, BatchingConfig())
        await loaded.warm_up()
        return loaded

    loaded = asyncio.run(load())
    assert loaded.device == "cuda:0" and isinstance(loaded.gpu_memory_bytes, int)


def test_a_cuda_sessions_arena_is_capped_at_its_share_of_the_devices_budget():
    from flashml.runtime.devices import CUDA, providers_for
    from flashml.runtime.memory_budget import parse_budget
    from flashml.runtime.sessions import SessionOptions

    opts = SessionOptions(gpu_budgets=parse_budget("cpu=8GiB, cuda:0=6GiB"))
    assert opts.gpu_mem_limit("cuda:0", instances=2) == 3 << 30  # two instances share the device's budget
    assert opts.gpu_mem_limit("cuda:1") is None and opts.gpu_mem_limit("cpu") is None  # no budget: no cap
    assert SessionOptions(gpu_budgets=parse_budget("2GiB")).gpu_mem_limit("cuda:1") == 2 << 30
    cuda = dict(providers_for("cuda:0", gpu_mem_limit=3 << 30)[0][1])
    assert cuda["gpu_mem_limit"] == 3 << 30 and providers_for("cuda:0")[0][0] == CUDA
    assert "gpu_mem_limit" not in providers_for("cuda:0")[0][1]
