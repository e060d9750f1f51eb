"""The ONNX Runtime session both peers run: the same options as ``bench/raw_ort.py`` and the naive server (no
spinning intra-op threads, the CPU provider), without importing FlashML, which the peers' environments lack."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session(path: str | Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    # Spinning threads burn the cores a server's own work needs (NOTES.md); raw and naive runs turn it off too.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
