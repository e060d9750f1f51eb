"""The doctor's checks of the Python side: versions, ONNX Runtime's providers (each really loaded) and the GPU.

ONNX Runtime lists the CUDA and TensorRT providers whenever the onnxruntime-gpu wheel is installed, even where
they cannot load; so each listed provider is tried by creating a session on a one-node model and running it.
When one does not load, ONNX Runtime says why only in its own log (the library it could not open), so that
log is read from the process's output while the session is made and quoted in the row.

How much a provider that does not load matters follows the settings: with ``device = cpu`` nothing needs it
(ok); with ``auto`` models run on the CPU instead: ok on a machine with no NVIDIA driver (a CPU node), a warning
where a driver answers (a GPU was meant to work); with ``cuda`` the server was told to use it (a failure).
TensorRT is judged the same way only when ``tensorrt`` is on.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata

import numpy as np
import onnxruntime as ort

from flashml import __version__
from flashml.ops.doctor import Check, Status, fail, ok
from flashml.runtime.devices import CPU, CUDA, TENSORRT, parse_device, tiny_model
from flashml.settings import Settings

PACKAGES = ("onnxruntime-gpu", "onnxruntime", "onnx", "numpy", "litestar", "granian", "sqlalchemy", "aiosqlite",
            "minio", "nvidia-ml-py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOAD_ERROR = re.compile(r"Failed to load library (\S+) with error: (.+)")
_LOG_LINE = re.compile(r"^\S+ \S+ \[([EW]):onnxruntime:[^\]]*\] (.*)$")
_MISSING_LIBRARY = "cannot open shared object file"


def python_checks() -> list[Check]:
    """Python's and FlashML's versions, and the versions of the packages that do the work."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return [ok("python", f"FlashML {__version__} on Python {platform.python_version()} "
                         f"({sys.executable}); " + ", ".join(found) + ".")]


def driver_present() -> bool:
    """Whether an NVIDIA driver answers (NVML loads and starts): a machine meant to use a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no library, no driver, no device: no GPU here
        return False
    with contextlib.suppress(Exception):
        pynvml.nvmlShutdown()
    return True


def gpu_need(settings: Settings, listed: bool, driver: bool | None = None) -> Status:
    """How much a CUDA that does not work matters here: the status its row gets.

    With ``device = auto`` a machine without any NVIDIA driver is a CPU node doing what it should (ok); only a
    driver that is there while CUDA does not load is a warning (a GPU was meant to work)."""
    device = parse_device(settings.device)
    if device.startswith("cuda"):
        return "fail"
    if device != "auto" or not listed:
        return "ok"
    return "warn" if (driver_present() if driver is None else driver) else "ok"


def provider_checks(settings: Settings) -> list[Check]:
    listed = ort.get_available_providers()
    device = parse_device(settings.device)
    index = int(device.partition(":")[2] or 0) if device.startswith("cuda") else 0
    checks = [_cpu_check()]
    cuda_status = gpu_need(settings, CUDA in listed)
    if CUDA not in listed:
        message = (f"ONNX Runtime {ort.__version__} has no CUDA provider (a CPU-only build): models run on the CPU"
                   + ("; device is " + device + ", so install onnxruntime-gpu" if cuda_status == "fail" else "."))
        checks.append(Check("cuda", cuda_status, message))
    else:
        checks.append(_provider_check("cuda", CUDA, {"device_id": index}, cuda_status, device))
    if TENSORRT in listed:
        trt_status: Status = cuda_status if settings.tensorrt else "ok"
        checks.append(_provider_check("tensorrt", TENSORRT, {"device_id": index}, trt_status, device,
                                      off=not settings.tensorrt))
    elif settings.tensorrt:
        checks.append(Check("tensorrt", cuda_status, "tensorrt is on but this ONNX Runtime has no TensorRT "
                                                     "provider: models run on CUDA or the CPU without it."))
    return checks


def _cpu_check() -> Check:
    try:
        ran = _run_probe([CPU])
    except Exception as exc:  # noqa: BLE001 - whatever stops the CPU provider is the answer
        return fail("cpu", f"ONNX Runtime {ort.__version__} cannot run a model on the CPU: {exc}")
    if ran is not None:
        return fail("cpu", f"ONNX Runtime {ort.__version__} cannot run a model on the CPU: {ran}")
    return ok("cpu", f"ONNX Runtime {ort.__version__} runs models on the CPU ({os.cpu_count()} cores).")


def _provider_check(name: str, provider: str, options: dict, status: Status, device: str, *,
                    off: bool = False) -> Check:
    """Create a session on ``provider`` (then the CPU, as the server lists them) and run it once."""
    label = "TensorRT" if provider == TENSORRT else "CUDA"
    with _captured_output() as said:
        try:
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()  # as the server does: CUDA and cuDNN from pip's nvidia-* wheels, if there
            problem = _run_probe([(provider, options), CPU], provider)
        except Exception as exc:  # noqa: BLE001 - the provider's own error is the answer
            problem = str(exc)
    if problem is None:
        return ok(name, f"the {label} provider loads and runs a model on GPU {options['device_id']}.")
    why = _why(said[0], problem, hint=status != "ok")
    if off:
        use = "not used (tensorrt is off)"
    elif provider == TENSORRT and status != "ok":
        use = "tensorrt is on, so models run without it (on CUDA where that works, else on the CPU)"
    elif status == "fail":
        use = f"device is {device}, so FlashML cannot serve as asked (models would run on the CPU)"
    elif status == "warn":
        use = "device is auto and an NVIDIA driver is there, so models run on the CPU instead of the GPU"
    elif device == "auto":
        use = "device is auto and this machine has no NVIDIA driver, so models run on the CPU as they should"
    else:
        use = f"not used (device is {device})"
    return Check(name, status, f"ONNX Runtime lists the {label} provider but it does not load: {why}. {use[0].upper()}"
                               f"{use[1:]}.")


def _run_probe(providers: list, wanted: str | None = None) -> str | None:
    """Make a session on a one-node model and run it; None when it worked on ``wanted`` (or at all), else why not."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 2  # warnings and errors: a provider that does not load says why at these levels
    session = ort.InferenceSession(tiny_model(), opts, providers=providers)
    if wanted is not None and wanted not in session.get_providers():
        return f"ONNX Runtime fell back to {', '.join(session.get_providers())}"
    x = np.array([1.5], dtype=np.float32)
    (y,) = session.run(None, {"x": x})
    return None if np.array_equal(y, x) else f"a one-node model answered {y!r} for {x!r}"


def _why(log: str, fallback: str, *, hint: bool = True) -> str:
    """The first reason ONNX Runtime logged (a library it could not open), in one line."""
    lines = [_ANSI.sub("", line).strip() for line in log.splitlines()]
    for line in lines:
        found = _LOAD_ERROR.search(line)
        if found:
            library, error = os.path.basename(found[1]), found[2].strip()
            how = (" (the CUDA and cuDNN libraries it needs are not installed: pip install "
                   "'onnxruntime-gpu[cuda,cudnn]' brings them; a GPU also needs the NVIDIA driver)"
                   if hint and _MISSING_LIBRARY in error else "")
            return f"{library} could not be loaded: {error}{how}"
    for line in lines:
        logged = _LOG_LINE.match(line)
        if logged and logged[1] == "E":
            return logged[2].split("] ", 1)[-1].strip()
    return fallback


@contextlib.contextmanager
def _captured_output() -> Iterator[list[str]]:
    """What the process writes meanwhile, kept off the terminal and handed back (the list's one item, at the end).

    ONNX Runtime logs from C++ to file descriptor 2 and prints its fall-back notice from Python, so both the
    descriptors and Python's streams are redirected."""
    said: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        python = io.StringIO()
        try:
            with contextlib.redirect_stdout(python), contextlib.redirect_stderr(python):
                yield said
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            said.append(sink.read().decode(errors="replace") + python.getvalue())


def gpu_check(settings: Settings) -> Check:
    """The NVIDIA driver and its GPUs, through NVML (the driver's own library)."""
    listed = CUDA in ort.get_available_providers()
    status = gpu_need(settings, listed)
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - no library, no driver, no device: that is the answer
        if status == "fail":
            use = f"device is {settings.device}, which needs one"
        elif parse_device(settings.device) == "auto":
            use = "models run on the CPU (device is auto)"
        else:
            use = f"none is needed (device is {settings.device})"
        return Check("gpu", status, f"no NVIDIA GPU driver answers (NVML: {exc}): {use}.")
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(f"{i}: {pynvml.nvmlDeviceGetName(handle)} ({memory.free / 2**30:.1f} of "
                        f"{memory.total / 2**30:.1f} GiB free)")
    except Exception as exc:  # noqa: BLE001
        return Check("gpu", status, f"the NVIDIA driver answers but cannot list its GPUs (NVML: {exc}).")
    finally:
        pynvml.nvmlShutdown()
    if not gpus:
        return Check("gpu", status, f"NVIDIA driver {driver} sees no GPU.")
    return ok("gpu", f"NVIDIA driver {driver} (CUDA {cuda // 1000}.{cuda % 1000 // 10}); GPU " + "; ".join(gpus) + ".")
