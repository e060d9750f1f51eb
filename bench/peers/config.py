"""The peers' settings, files and command lines, as plain data (tested without the peers installed).

Batching, the same for both peers and stated in bench/README.md: at most ``max_batch_size`` rows a batch (64),
and the oldest request waits at most FlashML's own tuned ``max_queue_delay_us`` for company (read from the
FlashML version being compared, so no server is given a longer wait than FlashML takes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PEERS = ("pytriton", "mlserver")
PEERS_DIR = Path(__file__).resolve().parent.parent / ".peers"
REPO_ROOT = PEERS_DIR.parent.parent
PACKAGES = {
    # PyTriton bundles Triton's tritonserver (2.51) and its dynamic batcher.
    "pytriton": ["nvidia-pytriton==0.7.0"],
    # MLServer's worker processes fail with uvloop 0.20 and newer ("There is no current event loop").
    "mlserver": ["mlserver==1.7.1", "uvloop<0.20"],
}
# MLServer's adaptive batcher is off at a max_batch_time of 0, and waits with asyncio's timeouts (a millisecond
# at best), so a delay under that is given as its least useful value instead.
MLSERVER_MIN_BATCH_TIME_S = 0.001


@dataclass(frozen=True)
class PeerBatching:
    """A peer's batching: rows per batch at most, and how long the oldest request may wait for company."""

    max_batch_size: int = 64
    max_queue_delay_us: int = 0


@dataclass(frozen=True)
class PeerPorts:
    """Every port a peer opens: left to defaults, both would take the same gRPC and metrics ports."""

    http: int
    grpc: int
    metrics: int


def parse_peers(text: str) -> list[str]:
    """``pytriton,mlserver`` -> the peers named (``none`` or empty: no peer); an unknown name is an error."""
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        raise ValueError(f"unknown peer {', '.join(unknown)}: choose from {', '.join(PEERS)}")
    return names


def requirements(peer: str, onnxruntime_version: str) -> list[str]:
    """What pip installs into a peer's environment: the peer, and ONNX Runtime's CPU wheel of FlashML's release."""
    return [*PACKAGES[peer], f"onnxruntime=={onnxruntime_version}"]


def venv_dir(peer: str, root: Path = PEERS_DIR) -> Path:
    return root / peer


def venv_python(peer: str, root: Path = PEERS_DIR) -> Path:
    return venv_dir(peer, root) / "bin" / "python"


def missing(peer: str, root: Path = PEERS_DIR) -> str | None:
    """One line saying why a peer cannot run, or None when its environment is there."""
    if venv_python(peer, root).exists():
        return None
    return f"{peer}: no environment at {venv_dir(peer, root)} (python -m bench.peers.setup --peers {peer}); skipped"


def triton_model_config(batching: PeerBatching) -> dict:
    """Triton's model configuration (the fields PyTriton's ``ModelConfig`` and ``DynamicBatcher`` take)."""
    return {"max_batch_size": batching.max_batch_size,
            "dynamic_batching": {"max_queue_delay_microseconds": batching.max_queue_delay_us}}


def pytriton_command(python: Path, model: Path, name: str, ports: PeerPorts, batching: PeerBatching) -> list[str]:
    return [str(python), "-m", "bench.peers.pytriton_server", "--model", str(model), "--name", name,
            "--http-port", str(ports.http), "--grpc-port", str(ports.grpc), "--metrics-port", str(ports.metrics),
            "--max-batch-size", str(batching.max_batch_size),
            "--max-queue-delay-us", str(batching.max_queue_delay_us)]


def pytriton_env(base: dict[str, str], libdir: str) -> dict[str, str]:
    """PyTriton's Python stub links the system's libpython3.11; under another 3.11 build it fails
    (``'_thread.RLock' object has no attribute '_recursion_count'``) unless the interpreter's own LIBDIR comes
    first."""
    env = peer_env(base)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, base.get("LD_LIBRARY_PATH", "")) if p)
    return env


def peer_env(base: dict[str, str]) -> dict[str, str]:
    """The environment a peer runs in: ``bench.peers`` importable, nothing of FlashML's environment on the path."""
    env = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), base.get("PYTHONPATH", "")) if p)
    return env


def mlserver_settings(ports: PeerPorts) -> dict:
    """MLServer's settings.json: our ports, and inference in the server's own process (``parallel_workers`` 0).

    MLServer's default is one worker process behind a queue; on this two-core machine 0 served more (MLP, 32
    clients: 2,088 and 2,140 req/s against 1,727 and 1,906 with 1, and 1,790 and 1,533 with 2; one CNN client:
    156 and 150 against 123 and 108; 32 CNN clients level), so the peer gets its better setting."""
    return {"http_port": ports.http, "grpc_port": ports.grpc, "metrics_port": ports.metrics,
            "host": "127.0.0.1", "debug": False, "parallel_workers": 0}


def mlserver_model_settings(name: str, model: Path, batching: PeerBatching) -> dict:
    """MLServer's model-settings.json: our runtime on the model file, with adaptive batching."""
    return {"name": name, "implementation": "bench.peers.mlserver_model.OnnxRuntimeModel",
            "parameters": {"uri": str(model)},
            "max_batch_size": batching.max_batch_size,
            "max_batch_time": max(batching.max_queue_delay_us / 1e6, MLSERVER_MIN_BATCH_TIME_S)}


def mlserver_command(folder: Path, root: Path = PEERS_DIR) -> list[str]:
    """``mlserver start`` on the folder that holds settings.json and model-settings.json."""
    return [str(venv_dir("mlserver", root) / "bin" / "mlserver"), "start", str(folder)]
