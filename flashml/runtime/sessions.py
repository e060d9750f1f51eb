"""Create ONNX Runtime sessions with settings that suit a server."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from flashml.runtime.devices import CUDA, providers_for

log = logging.getLogger("flashml.runtime")


def create_session(model_path: Path, device: str, intra_op_threads: int = 0) -> ort.InferenceSession:
    """A session for ``device`` (``cpu`` or ``cuda:N``). Blocking: call it from a worker thread."""
    opts = ort.SessionOptions()
    # Idle intra-op threads spin by default and burn cores between requests; a server is mostly idle.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if intra_op_threads > 0:
        opts.intra_op_num_threads = intra_op_threads
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), opts, providers=providers_for(device))
    if device.startswith("cuda") and CUDA not in session.get_providers():
        log.warning("CUDA could not run %s; it runs on the CPU instead", model_path)
    return session
