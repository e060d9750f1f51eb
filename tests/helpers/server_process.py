"""Start the real `flashml serve` in a subprocess on a free loopback port, as a user would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# Short limits keep the tests that kill a hanging or greedy model quick.
SERVER_FLAGS = ("--validation-timeout-s", "15", "--validation-memory-bytes", str(1536 * 1024 * 1024),
                "--upload-wait-s", "30", "--in-use-window-s", "2", "--device", "cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flashml(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, through `python -m flashml`."""
    proc = subprocess.run([sys.executable, "-m", "flashml", *args], input=input, capture_output=True, text=True,
                          timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"flashml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class ServerProcess:
    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.scheme = "https" if "--tls-certificate" in extra else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        self.extra = extra
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flashml", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             *self.extra], stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def setup_url(self) -> str | None:
        found = re.findall(r"(https?://\S+/setup/\?token=\S+)", self.log())
        return found[-1] if found else None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)
        finally:
            self._log.close()

    def create_key(self, name: str = "test", role: str = "admin", models: tuple[str, ...] = ()) -> str:
        args = ["keys", "create", "--name", name, "--role", role, "--data-dir", str(self.data_dir)]
        for m in models:
            args += ["--model", m]
        return flashml(*args).stdout.strip()


def login_token(client: httpx.Client) -> dict[str, str]:
    """The sign-in form's pre-session CSRF field for ``client``: the page sets it in a cookie that the client
    keeps and must send back with the same value in the form (the setup form takes the same token)."""
    if "flashml_csrf" not in client.cookies:
        client.get("/login")
    return {"csrf_token": client.cookies["flashml_csrf"]}
