"""GPU utilisation, memory and power through NVML: nothing where NVML cannot start, Triton's units where it can.

The CI machine has no NVIDIA driver: there a scrape has no GPU samples, and the readings' units, the GPUs
CUDA_VISIBLE_DEVICES hides and the readings a board does not support are checked with a stand-in for NVML (the
driver's library, not ours). The last test reads a real GPU, where there is one.
"""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flashml.telemetry import gpu_memory
from flashml.telemetry.gpu_collector import GpuCollector

GiB = 1 << 30


class NotSupported(Exception):
    """What NVML raises for a reading a board does not have (NVMLError_NotSupported)."""


class StandInNvml:
    """Two GPUs as pynvml shows them; the second has no power reading."""

    def __init__(self) -> None:
        self.gpus = [SimpleNamespace(uuid="GPU-aaaa", busy=37, used=3 * GiB, total=80 * GiB, milliwatts=215_500),
                     SimpleNamespace(uuid=b"GPU-bbbb", busy=0, used=GiB, total=16 * GiB, milliwatts=None)]

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int):
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str):
        return next(g for g in self.gpus if g.uuid in (uuid, uuid.encode()))

    def nvmlDeviceGetUUID(self, gpu):
        return gpu.uuid

    def nvmlDeviceGetUtilizationRates(self, gpu):
        return SimpleNamespace(gpu=gpu.busy, memory=0)

    def nvmlDeviceGetMemoryInfo(self, gpu):
        return SimpleNamespace(used=gpu.used, total=gpu.total, free=gpu.total - gpu.used)

    def nvmlDeviceGetPowerUsage(self, gpu) -> int:
        if gpu.milliwatts is None:
            raise NotSupported("Not Supported")
        return gpu.milliwatts


def scrape(collector: GpuCollector) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {(s.name, s.labels["gpu_uuid"]): s.value
            for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}


def test_no_gpu_samples_where_nvml_cannot_start():
    assert scrape(GpuCollector(nvml=lambda: None)) == {}
    if gpu_memory.nvml() is None:  # this machine: no NVIDIA driver
        assert scrape(GpuCollector()) == {}


def test_readings_in_tritons_units_for_every_gpu():
    got = scrape(GpuCollector(nvml=StandInNvml, index_of=lambda device: int(device.partition(":")[2])))
    assert got[("flashml_gpu_utilization", "GPU-aaaa")] == 0.37  # a share, 0 to 1, as Triton's nv_gpu_utilization
    assert got[("flashml_gpu_memory_used_bytes", "GPU-aaaa")] == 3 * GiB
    assert got[("flashml_gpu_memory_total_bytes", "GPU-aaaa")] == 80 * GiB
    assert got[("flashml_gpu_power_usage", "GPU-aaaa")] == 215.5  # watts, from NVML's milliwatts
    # The second board has no power reading: left out, the rest of it is there (its UUID came as bytes).
    assert got[("flashml_gpu_memory_total_bytes", "GPU-bbbb")] == 16 * GiB
    assert ("flashml_gpu_power_usage", "GPU-bbbb") not in got


@pytest.mark.parametrize(("visible", "shown"), [("1", {"GPU-bbbb"}), ("GPU-aaaa", {"GPU-aaaa"}), ("", set()),
                                                ("0,7", {"GPU-aaaa"})])
def test_only_the_gpus_cuda_visible_devices_lets_this_process_use(visible, shown):
    got = scrape(GpuCollector(nvml=StandInNvml, index_of=lambda d: gpu_memory.nvml_index(d, visible=visible)))
    assert {uuid for _, uuid in got} == shown


@pytest.mark.gpu
@pytest.mark.skipif(gpu_memory.nvml() is None or shutil.which("nvidia-smi") is None,
                    reason="needs an NVIDIA GPU, its driver and nvidia-smi")
def test_real_gpu_readings_agree_with_nvidia_smi():
    got = scrape(GpuCollector())
    smi = subprocess.run(["nvidia-smi", "--query-gpu=uuid,memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    totals = {uuid.strip(): int(mib) * (1 << 20) for uuid, mib in (line.split(",") for line in smi.splitlines())}
    uuids = {uuid for _, uuid in got}
    assert uuids and uuids <= set(totals)
    for uuid in uuids:
        assert got[("flashml_gpu_memory_total_bytes", uuid)] == pytest.approx(totals[uuid], rel=0.01)
        assert 0 < got[("flashml_gpu_memory_used_bytes", uuid)] <= got[("flashml_gpu_memory_total_bytes", uuid)]
        assert 0 <= got[("flashml_gpu_utilization", uuid)] <= 1
        if ("flashml_gpu_power_usage", uuid) in got:
            assert 10 < got[("flashml_gpu_power_usage", uuid)] < 2000  # watts: an idle to a flat-out board
