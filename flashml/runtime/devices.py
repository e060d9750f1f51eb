"""Pick the execution providers for a device setting, testing CUDA by really creating a session."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re

import onnxruntime as ort
from onnx import TensorProto, helper

log = logging.getLogger("flashml.runtime")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


def tiny_model() -> bytes:
    """A one-node model (y = Identity(x), one float): what a provider is tried on."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


@functools.lru_cache(maxsize=8)
def cuda_works(device_id: int = 0) -> bool:
    """True when a CUDA session really starts (the provider list alone says nothing)."""
    if CUDA not in ort.get_available_providers():
        return False
    # On a machine without CUDA libraries both steps print a screenful of errors; that is the expected answer
    # here, so keep it out of the server's log and say it once in our own words (resolve_device).
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()  # finds CUDA/cuDNN from pip's nvidia-* wheels or an installed torch
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(tiny_model(), opts, providers=[(CUDA, {"device_id": device_id}), CPU])
        return CUDA in sess.get_providers()
    except Exception:  # noqa: BLE001 - any failure means "no usable CUDA"
        return False
    finally:
        ort.set_default_logger_severity(2)


_DEVICE = re.compile(r"(cpu|auto|cuda)(?::([0-9]{1,4}))?")


def parse_device(text: str) -> str:
    """``cpu``, ``auto`` or ``cuda:N`` from a device setting (``cuda`` is ``cuda:0``; case and spaces do not
    matter); ValueError with a sentence for anything else."""
    m = _DEVICE.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if m is None or (m[2] is not None and m[1] != "cuda"):
        raise ValueError(f"{text!r} is not a device: use cpu, auto, cuda or cuda:N")
    return f"cuda:{int(m[2] or 0)}" if m[1] == "cuda" else m[1]


def resolve_device(setting: str) -> str:
    """Turn ``auto`` into ``cuda:0`` or ``cpu``; check an explicit CUDA device, falling back loudly."""
    setting = parse_device(setting or "auto")
    if setting == "cpu":
        return "cpu"
    if setting == "auto":
        if cuda_works(0):
            return "cuda:0"
        log.info("no usable CUDA device (driver, CUDA 13 and cuDNN 9 libraries are needed); models run on the CPU")
        return "cpu"
    if cuda_works(int(setting.partition(":")[2])):
        return setting
    log.warning("device %s was asked for but CUDA does not work here; models run on the CPU", setting)
    return "cpu"


def providers_for(device: str, *, tensorrt: bool = False, tensorrt_fp16: bool = False,
                  trt_cache_dir: str | None = None, gpu_mem_limit: int | None = None) -> list:
    """Execution providers for a device, best first; ONNX Runtime falls back along the list. ``gpu_mem_limit``:
    the most bytes the CUDA provider's arena may hold (a batch that needs more fails instead)."""
    if not device.startswith("cuda"):
        return [CPU]
    idx = int(device.partition(":")[2] or 0)
    # Serving settings: heuristic conv search (no minutes-long exhaustive search at load) and an arena
    # that grows by what is asked (no doubling that strands GPU memory).
    cuda: dict = {"device_id": idx, "cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kSameAsRequested"}
    if gpu_mem_limit:
        cuda["gpu_mem_limit"] = int(gpu_mem_limit)
    providers: list = [(CUDA, cuda), CPU]
    if tensorrt:
        trt: dict[str, int | bool | str] = {"device_id": idx, "trt_fp16_enable": tensorrt_fp16}
        if trt_cache_dir:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=trt_cache_dir,
                       trt_timing_cache_enable=True, trt_timing_cache_path=trt_cache_dir)
        providers.insert(0, (TENSORRT, trt))
    return providers
