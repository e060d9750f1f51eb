"""GPU memory readings through NVML, the NVIDIA driver's management library (``nvidia-ml-py``, NVIDIA's own
binding). ONNX Runtime does not report what a session holds on the GPU, so a version's share is measured as
the growth of this process's GPU memory while its sessions are created and warmed up.

Where NVML cannot see this process (a container with its own PID namespace), the device's used memory is
read instead: still the growth around a load, but other processes on that GPU move it too.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

log = logging.getLogger("flashml.telemetry")
NVML_LOCK = threading.Lock()  # NVML calls from the loop and from worker threads


@functools.lru_cache(maxsize=1)
def _nvml():
    """The initialised ``pynvml`` module, or None where there is no NVIDIA driver (said once in the log)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception as exc:  # noqa: BLE001 - no library, no driver, no device: no readings
        log.info("GPU memory is not measured: NVML could not start (%s)", exc)
        return None


def nvml():
    """The initialised ``pynvml`` module (call it under ``NVML_LOCK``), or None where NVML cannot start."""
    return _nvml()


def nvml_index(device: str, visible: str | None = None) -> int | str | None:
    """The NVML index (or GPU UUID) of a ``cuda:N`` device: CUDA numbers the devices that
    ``CUDA_VISIBLE_DEVICES`` lists, NVML numbers them all. None: not a CUDA device, or hidden."""
    if not device.startswith("cuda"):
        return None
    n = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if visible is None or not visible.strip():
        return n if visible is None else None
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if n >= len(entries):
        return None
    entry = entries[n]
    return int(entry) if entry.isdigit() else entry


def used_bytes(device: str) -> int | None:
    """GPU memory this process holds on ``device`` now (the device's used memory where NVML does not list
    this process); None on the CPU or without NVML."""
    index = nvml_index(device)
    nvml = _nvml() if index is not None else None
    if nvml is None:
        return None
    try:
        with NVML_LOCK:
            handle = (nvml.nvmlDeviceGetHandleByIndex(index) if isinstance(index, int)
                      else nvml.nvmlDeviceGetHandleByUUID(index))
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and isinstance(proc.usedGpuMemory, int):
                    return proc.usedGpuMemory
            return int(nvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception as exc:  # noqa: BLE001 - a reading is worth nothing to fail a load for
        log.warning("reading the GPU memory of %s failed: %s", device, exc)
        return None
