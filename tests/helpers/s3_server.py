"""A real S3-protocol server on loopback (moto's), for the S3 backend's tests: in-process, or a process of its own."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from moto.server import ThreadedMotoServer

from tests.helpers.server_process import free_port

ACCESS, SECRET = "test-access-key", "test-secret-key"


@contextmanager
def moto_server() -> Iterator[str]:
    """Yield the server's host:port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


class MotoProcess:
    """moto's S3 server in a process of its own: a test can freeze it (SIGSTOP), thaw it, or restart it empty.

    ``ThreadedMotoServer`` lives in the test's own process, so it cannot hang the way a real store does.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> MotoProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                httpx.get(f"http://{self.endpoint}/moto-api/", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start on {self.endpoint}") from None
                time.sleep(0.1)

    def freeze(self) -> None:
        """Stop the process where it stands: connections are still accepted, nothing is answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.thaw()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart_empty(self) -> None:
        """What a store without persistent data does after a crash: back on the same port, with no buckets."""
        self.stop()
        self.start()


@contextmanager
def moto_process() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    try:
        yield server
    finally:
        server.stop()
