"""GPU utilisation, memory and power through NVML, as Triton exports them (``nv_gpu_*`` is ``flashml_gpu_*``).

Only the GPUs this process may use (``CUDA_VISIBLE_DEVICES``, as ``gpu_memory.nvml_index`` reads it), each
labelled by its UUID. Where NVML cannot start (no NVIDIA driver, no GPU) a scrape has no GPU samples at all; a
reading a GPU does not support (power on some boards, utilisation of a MIG slice) is left out, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from flashml.telemetry import gpu_memory

log = logging.getLogger("flashml.telemetry")
LABELS = ["gpu_uuid"]


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "utilization": GaugeMetricFamily(
            "flashml_gpu_utilization", "Share of the last sample period the GPU was busy, 0 to 1", labels=LABELS),
        "memory_used": GaugeMetricFamily(
            "flashml_gpu_memory_used_bytes", "GPU memory in use, by every process", labels=LABELS),
        "memory_total": GaugeMetricFamily(
            "flashml_gpu_memory_total_bytes", "GPU memory installed", labels=LABELS),
        "power": GaugeMetricFamily(
            "flashml_gpu_power_usage", "GPU power draw, in watts", labels=LABELS),
    }


class GpuCollector:
    """A prometheus_client collector of NVML's readings; ``nvml`` returns the pynvml module or None."""

    def __init__(self, nvml: Callable[[], Any] = gpu_memory.nvml,
                 index_of: Callable[[str], int | str | None] = gpu_memory.nvml_index) -> None:
        self.nvml = nvml
        self.index_of = index_of  # cuda:N -> NVML index or UUID (CUDA_VISIBLE_DEVICES)
        self._warned: set[str] = set()

    def describe(self) -> Iterator[Metric]:
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        nvml = self.nvml()
        if nvml is None:
            return
        families = _families()
        found = False
        with gpu_memory.NVML_LOCK:
            for handle in self._handles(nvml):
                uuid = self._read(nvml.nvmlDeviceGetUUID, handle)
                if uuid is None:
                    continue
                found = True
                labels = [uuid.decode() if isinstance(uuid, bytes) else str(uuid)]
                rates = self._read(nvml.nvmlDeviceGetUtilizationRates, handle)
                if rates is not None:
                    families["utilization"].add_metric(labels, rates.gpu / 100)
                memory = self._read(nvml.nvmlDeviceGetMemoryInfo, handle)
                if memory is not None:
                    families["memory_used"].add_metric(labels, memory.used)
                    families["memory_total"].add_metric(labels, memory.total)
                milliwatts = self._read(nvml.nvmlDeviceGetPowerUsage, handle)
                if milliwatts is not None:
                    families["power"].add_metric(labels, milliwatts / 1000)
        if found:
            yield from families.values()

    def _handles(self, nvml: Any) -> Iterator[Any]:
        """The handles of the GPUs CUDA numbers for this process, in CUDA's order."""
        count = self._read(nvml.nvmlDeviceGetCount)
        for n in range(count or 0):
            index = self.index_of(f"cuda:{n}")
            if index is None:  # CUDA_VISIBLE_DEVICES lists fewer
                return
            if isinstance(index, int):
                handle = self._read(nvml.nvmlDeviceGetHandleByIndex, index) if index < count else None
            else:
                handle = self._read(nvml.nvmlDeviceGetHandleByUUID, index)
            if handle is not None:
                yield handle

    def _read(self, call: Callable[..., Any], *args: Any) -> Any:
        """One NVML call, or None when it fails (said once per call in the log, not at every scrape)."""
        try:
            return call(*args)
        except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported and kin: that reading is left out
            name = getattr(call, "__name__", str(call))
            if name not in self._warned:
                self._warned.add(name)
                log.info("GPU metrics: NVML's %s failed (%s); left out of GET /metrics", name, exc)
            return None
