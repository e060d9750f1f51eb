"""GPU memory per loaded version: read through NVML, counted from before the sessions to after the warm-up.

The CI machine has no GPU and no NVIDIA driver: there the readings are None and the GPU's growth is checked
with a stand-in for NVML's reading (NVML is the driver's, not ours). The last test loads a version on a real
GPU, where one works.
"""

from __future__ import annotations

import asyncio

import pytest

from flashml.metrics import gpu_memory
from flashml.runtime.batching import BatchingConfig
from flashml.runtime.devices import cuda_works
from flashml.runtime.pool import ModelPool
from flashml.signature import Signature, TensorSpec
from tests import onnx_models

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


def _load(pool: ModelPool, tmp_path, number: int = 1):
    path = onnx_models.add_model(tmp_path / f"add{number}.onnx")
    return asyncio.run(pool.load("m", number, path, ADD, BatchingConfig()))


def test_a_version_on_a_gpu_counts_its_growth_through_the_warm_up(tmp_path):
    nvml = FakeNvml()
    loaded = _load(ModelPool("cpu", gpu_reader=nvml), tmp_path)
    assert loaded.gpu_memory_bytes is None and nvml.asked == []  # on the CPU the GPU is never read
    # What the pool records for a version whose sessions run on CUDA: the reading before they were made.
    loaded.device, loaded.gpu_baseline, loaded.gpu_reader = "cuda:0", nvml.used, nvml
    loaded.warmed = False
    nvml.used += 300 * MiB  # weights and the arena the warm-up grew
    asyncio.run(loaded.warm_up())
    assert loaded.gpu_memory_bytes == 300 * MiB and nvml.asked == ["cuda:0"]
    assert loaded.memory_bytes == 300 * MiB  # the GPU's share is what counts against the cuda:0 budget
    nvml.used -= 400 * MiB  # another version freed more than this one holds: never negative
    loaded.measure_gpu()
    assert loaded.gpu_memory_bytes == 0 and loaded.memory_bytes == loaded.file_bytes


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
