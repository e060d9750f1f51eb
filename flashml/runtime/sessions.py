"""Create ONNX Runtime sessions with settings that suit a server, one per execution instance."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from flashml.runtime.devices import CPU, CUDA, TENSORRT, providers_for
from flashml.runtime.memory_budget import budget_for

log = logging.getLogger("flashml.runtime")


@dataclass(frozen=True)
class SessionOptions:
    intra_op_threads: int = 0  # 0: split the cores among the instances
    tensorrt: bool = False
    tensorrt_fp16: bool = False
    trt_cache_dir: str | None = None
    # Device -> bytes (flashml.runtime.memory_budget.parse_budget): a CUDA session's arena is capped at its
    # device's budget shared among the version's instances (ONNX Runtime's gpu_mem_limit), so one version's
    # batch cannot take the GPU memory that the budget leaves to the others.
    gpu_budgets: dict[str, int] = field(default_factory=dict)

    def gpu_mem_limit(self, device: str, instances: int = 1) -> int | None:
        budget = budget_for(self.gpu_budgets, device) if device.startswith("cuda") else None
        return budget // max(1, instances) if budget else None


def threads_per_instance(setting: int, instances: int, device: str) -> int:
    """CPU instances share the cores without oversubscription; 0 lets ONNX Runtime pick for one instance."""
    if setting > 0:
        return setting
    if instances <= 1 or device.startswith("cuda"):
        return 0
    return max(1, (os.cpu_count() or 1) // instances)


def wide_instance(setting: int, instances: int, device: str) -> bool:
    """Whether CPU instances that split the cores get one more instance of all the cores, for a batch that finds
    them all idle (a lone request then runs as fast as with one instance): not where threads are set by hand."""
    return (not setting and instances > 1 and not device.startswith("cuda")
            and threads_per_instance(setting, instances, device) < (os.cpu_count() or 1))


def create_session(model_path: Path, device: str, options: SessionOptions = SessionOptions(),
                   instances: int = 1) -> ort.InferenceSession:
    """A session for ``device`` (``cpu`` or ``cuda:N``). Blocking: call it from a worker thread."""
    opts = ort.SessionOptions()
    # Idle intra-op threads spin by default and burn cores between requests; a server is mostly idle.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    threads = threads_per_instance(options.intra_op_threads, instances, device)
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    providers = providers_for(device, tensorrt=options.tensorrt, tensorrt_fp16=options.tensorrt_fp16,
                              trt_cache_dir=options.trt_cache_dir,
                              gpu_mem_limit=options.gpu_mem_limit(device, instances))
    session = ort.InferenceSession(str(model_path), opts, providers=providers)
    got = session.get_providers()
    if device.startswith("cuda") and CUDA not in got and TENSORRT not in got:
        log.warning("CUDA could not run %s; it runs on the CPU (%s) instead", model_path, CPU)
    elif options.tensorrt and device.startswith("cuda") and TENSORRT not in got:
        log.warning("TensorRT could not run %s; it runs on plain CUDA instead", model_path)
    return session
