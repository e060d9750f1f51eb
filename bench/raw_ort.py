"""The hardware limit: ONNX Runtime in-process, no HTTP, at each batch size."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path, providers: list | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])


def measure(path: Path, sample_shape: list[int], batch_sizes=(1, 2, 4, 8, 16, 32, 64), seconds: float = 2.0,
            providers: list | None = None) -> dict:
    """Samples per second at each batch size, and single-sample latency percentiles (ms)."""
    sess = session(path, providers)
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
