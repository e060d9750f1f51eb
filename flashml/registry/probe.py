"""Warm a model up in a child process, so a hostile or broken model cannot take the server down.

The child (``python -m flashml.registry.probe MODEL --device cpu``) creates an onnxruntime session,
runs it on the manifest's declared samples, else on made-up inputs at sizes tried in turn
(``flashml.runtime.samples``), and prints one JSON line. The parent watches its memory and clock and
kills the whole process group when either runs over.

Then the child runs every batch size the server may run the model at before it is published (auto-tune's
sizes, a manifest's ``max_batch_size`` and ``batch_buckets``: a ``BatchPlan``), on the very inputs auto-tune
and the warm-ups make (``autotune.dummy_inputs``), largest last: a model may behave at 64 rows as it never did
at one. It says each size before and after running it, so a kill there still leaves the warm-up's answer and
the largest batch that ran (``ProbeResult.batch_proof``); nothing in the server runs the model past it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import flashml
from flashml.datatypes import BY_V2, from_ort
from flashml.errors import ValidationFailedError
from flashml.runtime.autotune import batchable, dummy_inputs
from flashml.runtime.samples import batch_keys, candidate_sizes, dim_key, rows_follow_the_batch, sample_inputs
from flashml.signature import Signature, TensorSpec

POLL_S = 0.05
STDERR_TAIL = 2000
PR_SET_PDEATHSIG = 1
EXIT_KNOWN_ERROR = 3  # the child printed {"code": ..., "error": ...}


@dataclass
class ProbeResult:
    signature: Signature
    providers: list[str]
    warmup_ms: float | None
    # Set where no made-up input ran the model (each guess failed): what the first guess's run said.
    warmup_error: str | None = None
    warmup_tries: int = 0
    # The largest batch that ran in the sandbox at the warm-up's sizes (``largest``), and where it stopped short
    # and why (``stopped_at``, ``reason``: memory, timeout, error, crashed, or latency_budget, which is no fault).
    # None where nothing ran on made-up inputs, or no plan was given.
    batch_proof: dict[str, Any] | None = None


@dataclass(frozen=True)
class BatchPlan:
    """The batch sizes the child runs after the warm-up, ascending; past a run longer than ``budget_ms`` it
    stops (0: never), as auto-tune does past its latency budget; and the parent's deadline (time.monotonic)."""

    sizes: Sequence[int]
    budget_ms: float = 0.0
    deadline: float = 0.0


class ProbeError(Exception):
    """Raised in the child for failures it can name; reported as one JSON line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---- child side ---------------------------------------------------------------------------------

def _spec(arg: Any) -> TensorSpec:
    dtype = from_ort(arg.type)
    if dtype is None:
        raise ProbeError("unsupported_type", f"Tensor {arg.name!r} has type {arg.type}, which FlashML cannot serve "
                         "over the V2 protocol; export the model with a supported tensor type.")
    dims = list(arg.shape or [])  # None when the rank itself is unknown
    shape = [d if isinstance(d, int) else -1 for d in dims]
    names = [d if isinstance(d, str) else None for d in dims]
    return TensorSpec(arg.name, dtype.v2, shape, names)


def _warm_up(session: Any, signature: Signature, sizes: dict[str, int], rows: int = 1) -> list[list[int]]:
    """One run on made-up inputs at ``sizes`` (flashml.runtime.samples); the shapes of its outputs."""
    return _run(session, signature, sample_inputs(signature, rows, sizes))


def _declared(signature: Signature, warmup: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int], int]:
    """The manifest's declared warm-up samples as arrays, the sizes of the dynamic dimensions they give, and their
    rows; inputs it does not declare are made up at those sizes. ProbeError ``bad_warmup`` for a sample that
    does not fit its input."""
    import numpy as np

    names = ", ".join(t.name for t in signature.inputs)
    arrays: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    rows = 1
    batch = batch_keys(signature)
    rng = np.random.default_rng(0)
    for name, spec in warmup.items():
        tensor = signature.input(name)
        if tensor is None:
            raise ProbeError("bad_warmup", f"flashml.toml [warmup.{name}] names no input of the model (its "
                             f"inputs: {names}).")
        dtype = BY_V2[tensor.datatype].numpy if tensor.datatype != "BYTES" else object
        if "file" in spec:
            try:
                arr = np.load(spec["file"], allow_pickle=False)  # data, never code: no pickled objects
            except (ValueError, OSError) as e:
                raise ProbeError("bad_warmup", f"flashml.toml [warmup.{name}] file is not a plain .npy array: "
                                 f"{e}") from e
        elif spec["fill"] == "random":
            low, high = spec["range"]  # the manifest made it [low, high]
            arr = rng.uniform(low, high, size=spec["shape"])
        else:
            arr = (np.ones if spec["fill"] == "ones" else np.zeros)(spec["shape"])
        try:
            arr = np.asarray(arr).astype(dtype)
        except (TypeError, ValueError) as e:
            raise ProbeError("bad_warmup", f"flashml.toml [warmup.{name}] cannot be {tensor.datatype}: {e}") from e
        if arr.ndim != len(tensor.shape) or any(d >= 0 and d != n for d, n in zip(tensor.shape, arr.shape,
                                                                                   strict=True)):
            raise ProbeError("bad_warmup", f"flashml.toml [warmup.{name}] has shape {list(arr.shape)}; the input "
                             f"takes {tensor.shape} (-1: any size).")
        for axis, d in enumerate(tensor.shape):
            if d < 0:
                key = dim_key(tensor, axis)
                if key in batch:
                    rows = int(arr.shape[axis])
                else:
                    sizes[key] = int(arr.shape[axis])
        arrays[name] = arr
    return arrays, sizes, rows


def _run(session: Any, signature: Signature, feed: dict[str, Any]) -> list[list[int]]:
    """Run the session once on ``feed``; the shapes of its outputs."""
    import numpy as np
    import onnxruntime as ort

    if any(spec.datatype == "BYTES" for spec in signature.inputs):
        # String inputs cannot be OrtValues; run() cannot hand back bfloat16 outputs, so skip those.
        wanted = [o.name for o in signature.outputs if o.datatype != "BF16"] or None
        return [list(np.shape(v)) for v in session.run(wanted, feed)]
    values = {}
    for spec in signature.inputs:
        arr = feed[spec.name]
        if spec.datatype == "BF16":  # onnxruntime's numpy bridge has no bfloat16: the raw bits, typed
            values[spec.name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                np.ascontiguousarray(arr).view(np.uint16), BY_V2["BF16"].onnx)
        else:
            values[spec.name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr))
    return [list(v.shape()) for v in session.run_with_ort_values(None, values)]


def _providers(device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    device_id = int(device.split(":", 1)[1]) if ":" in device else 0
    return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]


Say = Callable[[dict[str, Any]], None]


def _print_line(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def probe(model_path: str, device: str, warmup: dict[str, dict[str, Any]] | None = None,
          hints: dict[str, Any] | None = None, *, only_sizes: dict[str, int] | None = None,
          plan: BatchPlan | None = None, say: Say = lambda _line: None) -> dict[str, Any]:
    """Create a session, warm it up and describe it (runs in the child). ``warmup``: the manifest's declared
    samples; without them, made-up inputs at ``only_sizes`` (a real request's), else at sizes tried in turn
    (flashml.runtime.samples). With a ``plan``, the batch sizes it names run next (``_prove``): ``say`` gets
    the answer before they do, then a line before and after each."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy threads after warm-up
    try:
        session = ort.InferenceSession(model_path, sess_options=opts, providers=_providers(device))
    except Exception as e:
        raise ProbeError("session_failed", f"onnxruntime could not load the model: {e}") from e
    signature = Signature([_spec(a) for a in session.get_inputs()], [_spec(a) for a in session.get_outputs()])
    if warmup:
        arrays, sizes, rows = _declared(signature, warmup)
        feed = {**sample_inputs(signature, rows, sizes), **arrays}
        start = time.perf_counter()
        try:
            shapes = _run(session, signature, feed)
        except Exception as e:  # the user said these inputs are valid: the model is refused with what it said
            raise ProbeError("warmup_failed", f"The warm-up on the samples flashml.toml declares failed: {e}") from e
        warmup_ms = (time.perf_counter() - start) * 1000
        # Declared samples have the rows they have: every output must have as many (a second size is not tried).
        unbatched = bool(batch_keys(signature)) and not all(o[:1] == [rows] for o in shapes)
        signature = Signature(signature.inputs, signature.outputs, sizes, unbatched)
        return _proved({"signature": signature.to_dict(), "providers": session.get_providers(),
                        "warmup_ms": warmup_ms}, session, signature, plan, say)
    failures: list[str] = []
    for sizes in [only_sizes] if only_sizes is not None else candidate_sizes(signature, hints):
        start = time.perf_counter()
        try:
            _warm_up(session, signature, sizes)
        except Exception as e:  # noqa: BLE001 - a guess the model refused: try the next one
            failures.append(f"{_describe(signature, sizes)}: {e}")
            continue
        warmup_ms = (time.perf_counter() - start) * 1000
        unbatched = bool(batch_keys(signature)) and not rows_follow_the_batch(
            signature, sample_inputs(signature, 1, sizes), partial(_run, session, signature))
        signature = Signature(signature.inputs, signature.outputs, sizes, unbatched)
        return _proved({"signature": signature.to_dict(), "providers": session.get_providers(),
                        "warmup_ms": warmup_ms}, session, signature, plan, say)
    # Only made-up inputs failed: the model may well be valid (the upload is published with a warning).
    return {"signature": signature.to_dict(), "providers": session.get_providers(), "warmup_ms": None,
            "warmup_error": failures[0] if failures else "no made-up input could be formed",
            "warmup_tries": len(failures)}


def _proved(result: dict[str, Any], session: Any, signature: Signature, plan: BatchPlan | None,
            say: Say) -> dict[str, Any]:
    """The warm-up's answer, with what the plan's batch sizes showed (``batch_proof``)."""
    if plan is None:
        return result
    say(result)  # a kill while the batches run leaves this answer (the parent adds what they showed)
    return {**result, "batch_proof": _prove(lambda feed: _run(session, signature, feed), signature, plan, say)}


def _prove(run: Callable[[dict[str, Any]], Any], signature: Signature, plan: BatchPlan, say: Say
           ) -> dict[str, Any]:
    """Run auto-tune's own inputs at each of the plan's sizes in turn (one row only where the model cannot
    batch: auto-tune measures nothing else); stop at the first the model refuses, at one that would not
    finish before the deadline (judged from the last), or past the plan's latency budget."""
    sizes = list(plan.sizes) if batchable(signature) else [1]
    largest, last = 0, (0, 0.0)
    for rows in sizes:
        if last[0] and plan.deadline and time.monotonic() + last[1] * rows / last[0] > plan.deadline:
            return {"largest": largest, "stopped_at": rows, "reason": "timeout"}
        say({"batch_start": rows})
        start = time.perf_counter()
        try:
            run(dummy_inputs(signature, rows))
        except Exception as e:  # noqa: BLE001 - the model refuses this batch: the largest is the one before
            return {"largest": largest, "stopped_at": rows, "reason": "error", "error": str(e)[:STDERR_TAIL]}
        last = (rows, time.perf_counter() - start)
        say({"batch_ok": rows})
        largest = rows
        if plan.budget_ms and last[1] * 1000 > plan.budget_ms and rows != sizes[-1]:
            return {"largest": largest, "reason": "latency_budget"}  # auto-tune stops here too
    return {"largest": largest}


def _describe(signature: Signature, sizes: dict[str, int]) -> str:
    shapes = {name: list(arr.shape) for name, arr in sample_inputs(signature, 1, sizes).items()}
    return "inputs of shape " + ", ".join(f"{name} {shape}" for name, shape in shapes.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flashml.registry.probe")
    parser.add_argument("model_path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--cpu-limit-s", type=int, default=0)
    parser.add_argument("--warmup", default="", help="the manifest's declared warm-up samples, as JSON")
    parser.add_argument("--hints", default="", help="sizes a task's settings give, as JSON (samples.task_sizes)")
    parser.add_argument("--sizes", default="", help="the only sizes to run at (a real request's), as JSON")
    parser.add_argument("--batch-sizes", default="", help="batch sizes to run after the warm-up: 1,2,4,...")
    parser.add_argument("--budget-ms", type=float, default=0.0)
    parser.add_argument("--deadline", type=float, default=0.0, help="the parent's deadline, in time.monotonic()")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid, args.cpu_limit_s)
    plan = (BatchPlan([int(s) for s in args.batch_sizes.split(",")], args.budget_ms, args.deadline)
            if args.batch_sizes else None)
    try:
        result = probe(args.model_path, args.device, json.loads(args.warmup) if args.warmup else None,
                       json.loads(args.hints) if args.hints else None,
                       only_sizes=json.loads(args.sizes) if args.sizes else None, plan=plan, say=_print_line)
    except ProbeError as e:
        _print_line({"code": e.code, "error": str(e)})
        return EXIT_KNOWN_ERROR
    _print_line(result)
    return 0


def _die_with_parent(parent_pid: int, cpu_limit_s: int) -> None:
    """A server killed with -9 cannot kill its probe: the kernel does it (Linux), with a CPU-time backstop."""
    if cpu_limit_s > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit_s, cpu_limit_s + 5))
    if sys.platform.startswith("linux") and parent_pid:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(EXIT_KNOWN_ERROR)


# ---- parent side --------------------------------------------------------------------------------

def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass  # the process just exited
    return 0


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import the same flashml as we did, wherever the server was started from.
    root = str(Path(flashml.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                out.append(data)
    return out


def run_probe(model_path: Path, *, device: str = "cpu", timeout_s: float = 60.0,
              memory_bytes: int = 4 << 30, warmup: dict[str, dict[str, Any]] | None = None,
              hints: dict[str, Any] | None = None, sizes: dict[str, int] | None = None,
              batch_sizes: Sequence[int] = (), budget_ms: float = 0.0) -> ProbeResult:
    """Warm the model up in a watched child process (blocking; call it from a worker thread). ``sizes``: run
    made-up inputs at these sizes only (a real request's) instead of guessing. ``batch_sizes``: then run these
    batches within the same limits (``BatchPlan``); a kill there keeps the warm-up's answer."""
    # The CPU limit only catches an orphan the parent can no longer watch; the wall-clock deadline comes first.
    cmd = [sys.executable, "-m", "flashml.registry.probe", str(model_path), "--device", device,
           "--parent-pid", str(os.getpid()), "--cpu-limit-s", str(int(timeout_s * ((os.cpu_count() or 1) + 1)) + 30)]
    if warmup:
        cmd += ["--warmup", json.dumps(warmup)]
    if hints:
        cmd += ["--hints", json.dumps(hints)]
    if sizes is not None:
        cmd += ["--sizes", json.dumps(sizes)]
    deadline = time.monotonic() + timeout_s
    if batch_sizes:
        cmd += ["--batch-sizes", ",".join(str(int(b)) for b in batch_sizes), "--budget-ms", str(budget_ms),
                "--deadline", repr(deadline)]
    killed: ValidationFailedError | None = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_child_env(),
                                start_new_session=True)
        try:
            while proc.poll() is None:
                rss = _rss_bytes(proc.pid)
                if rss > memory_bytes:
                    _kill_group(proc)
                    killed = ValidationFailedError(
                        f"Warming the model up used more than {memory_bytes} bytes of memory ({rss} seen); "
                        "the model needs less memory or a higher validation memory limit.",
                        code="validation_memory", details={"rss_bytes": rss, "memory_bytes": memory_bytes})
                    break
                if time.monotonic() > deadline:
                    _kill_group(proc)
                    killed = ValidationFailedError(
                        f"Warming the model up took longer than {timeout_s:g} s; the model may loop forever or need "
                        "a higher validation timeout.", code="validation_timeout", details={"timeout_s": timeout_s})
                    break
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:  # an unexpected error in this loop: leave no child behind
                _kill_group(proc)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4 * STDERR_TAIL))  # a chatty model may log megabytes
        stderr = err.read().decode("utf-8", "replace")
    return _result(proc.returncode, stdout, stderr, killed, planned=bool(batch_sizes))


def _signal_name(returncode: int) -> str:
    return signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)


def _cut_short(lines: list[dict[str, Any]], killed: ValidationFailedError | None, returncode: int
               ) -> dict[str, Any]:
    """The batch proof of a child stopped while its batches ran: the largest that ran, the one it was running."""
    ran = [int(line["batch_ok"]) for line in lines if "batch_ok" in line]
    started = [int(line["batch_start"]) for line in lines if "batch_start" in line]
    largest = ran[-1] if ran else 0
    proof: dict[str, Any] = {"largest": largest, "stopped_at": started[-1] if started and started[-1] > largest
                             else None}
    if killed is not None:  # validation_memory, validation_timeout
        return {**proof, "reason": killed.code.removeprefix("validation_"), **killed.details}
    exit_status = {"signal": _signal_name(returncode)} if returncode < 0 else {"exit_code": returncode}
    return {**proof, "reason": "crashed", **exit_status}


def _result(returncode: int, stdout: str, stderr: str, killed: ValidationFailedError | None = None, *,
            planned: bool = False) -> ProbeResult:
    """The child's answer; ``killed``: why the parent killed it; ``planned``: it was given batches to run."""
    stderr = stderr.strip()[-STDERR_TAIL:]
    lines = _json_lines(stdout)
    answers = [line for line in lines if "signature" in line]
    if answers:  # the warm-up finished: whatever stopped the child after it only cut the batches short
        data = answers[-1]
        proof = data.get("batch_proof")
        if planned and proof is None and not data.get("warmup_error"):  # stopped while its batches ran
            proof = _cut_short(lines, killed, returncode)
        ms = data.get("warmup_ms")
        return ProbeResult(Signature.from_dict(data["signature"]), list(data["providers"]),
                           float(ms) if ms is not None else None, data.get("warmup_error"),
                           int(data.get("warmup_tries") or 0), proof)
    if killed is not None:
        raise killed
    if returncode < 0:
        name = _signal_name(returncode)
        raise ValidationFailedError(f"The warm-up process crashed with signal {name}. Last output: {stderr}",
                                    code="validation_crashed", details={"signal": name, "stderr": stderr})
    failure = lines[-1] if lines else None
    if failure and "code" in failure:
        message = failure["error"] + (f" (stderr: {stderr})" if stderr.strip() else "")
        raise ValidationFailedError(message, code=failure["code"], details={"stderr": stderr})
    raise ValidationFailedError(f"The warm-up process failed with exit code {returncode}: {stderr}",
                                code="session_failed", details={"exit_code": returncode, "stderr": stderr})


if __name__ == "__main__":
    sys.exit(main())
