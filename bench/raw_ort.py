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
            device: str = "cpu", confirm_seconds: float = 0.0) -> dict:
    """Samples per second at each batch size, and single-sample latency percentiles (ms).

    ``confirm_seconds``: measure the best batch size again, that long, and report that figure as the best.
    Where throughput is flat across sizes (a compute-bound CNN on a CPU past batch 4), the highest of several
    noisy readings is a lucky one more often than the best size; a second, independent reading is not."""
    sess = session(path, device)
    name, out = sess.get_inputs()[0].name, [o.name for o in sess.get_outputs()]
    rng = np.random.default_rng(0)
    per_batch = {bs: _throughput(sess, name, out, rng.standard_normal([bs, *sample_shape]).astype(np.float32),
                                 seconds) for bs in batch_sizes}
    best = max(per_batch, key=per_batch.get)
    sweep_best = per_batch[best]
    best_samples = sweep_best
    if confirm_seconds:
        x = rng.standard_normal([best, *sample_shape]).astype(np.float32)
        best_samples = _throughput(sess, name, out, x, confirm_seconds)
    changing = None
    if device.startswith("cuda") and best > 1:  # the same sizes in turn with one row less: a batcher's shapes
        xs = [rng.standard_normal([b, *sample_shape]).astype(np.float32) for b in (best, best - 1)]
        changing = _throughput_alternating(sess, name, out, xs, confirm_seconds or seconds)
    x = rng.standard_normal([1, *sample_shape]).astype(np.float32)
    lat = []
    for _ in range(300):
        t = time.perf_counter()
        sess.run(out, {name: x})
        lat.append((time.perf_counter() - t) * 1000)
    return {"samples_per_s": per_batch, "best_batch": best, "best_samples_per_s": best_samples,
            "sweep_best_samples_per_s": sweep_best, "alternating_shapes_samples_per_s": changing,
            "p50_ms_single": float(np.percentile(lat, 50)), "p99_ms_single": float(np.percentile(lat, 99))}


def _throughput(sess: ort.InferenceSession, name: str, out: list[str], x: np.ndarray, seconds: float) -> float:
    """Samples per second running batch ``x`` back to back for ``seconds`` (after one warm-up run)."""
    sess.run(out, {name: x})
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(out, {name: x})
        n += 1
    return n * len(x) / (time.perf_counter() - start)


def _throughput_alternating(sess: ort.InferenceSession, name: str, out: list[str], xs: list[np.ndarray],
                            seconds: float) -> float:
    """Samples per second running batches of alternating sizes (each run sees another input shape)."""
    for x in xs:
        sess.run(out, {name: x})
    n = rows = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = xs[n % len(xs)]
        sess.run(out, {name: x})
        n += 1
        rows += len(x)
    return rows / (time.perf_counter() - start)
