"""Start a peer from its own environment as a subprocess, wait until its model is ready, stop it.

Used by ``bench.run``; every figure it takes of a peer comes from the same wrk bodies as FlashML's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.peers import config


@dataclass
class RunningPeer:
    peer: str
    model: str
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def infer_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/models/{self.model}/infer"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now (held open together, so no two are the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start(peer: str, model_path: Path, model: str, batching: config.PeerBatching, work: Path,
          root: Path = config.PEERS_DIR) -> RunningPeer:
    """Start ``peer`` serving ``model_path`` as ``model``; return once ``/v2/models/{model}/ready`` says so."""
    ports = config.PeerPorts(*free_ports(3))
    folder = work / f"{peer}-{model}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    if peer == "pytriton":
        command = config.pytriton_command(config.venv_python(peer, root), model_path, model, ports, batching)
        env = config.pytriton_env(dict(os.environ), sysconfig.get_config_var("LIBDIR") or "")
    else:
        (folder / "settings.json").write_text(json.dumps(config.mlserver_settings(ports), indent=2))
        (folder / "model-settings.json").write_text(
            json.dumps(config.mlserver_model_settings(model, model_path, batching), indent=2))
        command = config.mlserver_command(folder, root)
        env = config.peer_env(dict(os.environ))
    with log.open("ab") as out:
        # A session of its own, so stop() can end whatever the peer started (tritonserver, MLServer's workers).
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    running = RunningPeer(peer, model, process, ports.http, log)
    try:
        wait_ready(running)
    except BaseException:
        stop(running)
        raise
    return running


def wait_ready(running: RunningPeer, timeout: float = 180) -> None:
    """Wait for V2 health (server ready), then the model's own readiness: PyTriton's server is ready before the
    model it binds is loaded."""
    base = f"http://127.0.0.1:{running.port}/v2"
    deadline = time.monotonic() + timeout
    for url in (f"{base}/health/ready", f"{base}/models/{running.model}/ready"):
        while True:
            if running.process.poll() is not None:
                raise RuntimeError(f"{running.peer} exited ({running.process.returncode}):\n{_tail(running.log)}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{running.peer} was not ready in {timeout:.0f} s:\n{_tail(running.log)}")
            time.sleep(0.2)


def stop(running: RunningPeer, grace: float = 30) -> None:
    """SIGTERM (both shut down cleanly on it: PyTriton stops tritonserver and removes its workspace), then
    SIGKILL for anything of the peer's session still there. Not SIGINT: a shell starts background jobs with
    SIGINT ignored, and Python then never turns it into KeyboardInterrupt, so PyTriton would not clean up."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(running.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    running.process.wait(10)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
