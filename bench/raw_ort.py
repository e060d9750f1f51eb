"""The hardware limit: ONNX Runtime in-process, no HTTP, at each batch size."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flashml.runtime.devices import providers_for


def providers(device: str = "cpu") -> list:
    """ONNX Runtime's providers for ``cpu`` or ``cuda:N``, with the settings FlashML serves with (heuristic
    convolution search, an arena grown as asked), so raw and served runs are set up alike."""
    if device.startswith("cuda") and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA and cuDNN from pip's nvidia-* wheels or an installed torch
    return providers_for(device)


def session(path: Path, device: str = "cpu") -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=providers(device))
    if device.startswith("cuda") and "CUDAExecutionProvider" not in sess.get_providers():
        raise RuntimeError(f"{device} was asked for but CUDA does not work here")
    return sess


def measure(path: Path, sample_shape: list[int], batch_sizes=(1, 2, 4, 8, 16, 32, 64), seconds: float = 2.0,
            device: str = "cpu") -> dict:
    """Samples per second at each batch size, and single-sample latency percentiles (ms)."""
    sess = session(path, device)
    name, out = sess.get_inputs()[0].name, [o.name for o in sess.get_outputs()]
    rng = np.random.default_rng(0)
    per_batch = {}
    for bs in batch_sizes:
        x = rng.standard_normal([bs, *sample_shape]).astype(np.float32)
        sess.run(out, {name: x})
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            sess.run(out, {name: x})
            n += 1
        per_batch[bs] = n * bs / (time.perf_counter() - start)
    x = rng.standard_normal([1, *sample_shape]).astype(np.float32)
    lat = []
    for _ in range(300):
        t = time.perf_counter()
        sess.run(out, {name: x})
        lat.append((time.perf_counter() - t) * 1000)
    best = max(per_batch, key=per_batch.get)
    return {"samples_per_s": per_batch, "best_batch": best, "best_samples_per_s": per_batch[best],
            "p50_ms_single": float(np.percentile(lat, 50)), "p99_ms_single": float(np.percentile(lat, 99))}
