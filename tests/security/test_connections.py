"""Idle, slow and overloading clients cannot lock others out of the real server.

Before: Granian's defaults let 1024 connections that never send a byte hold every slot forever (HTTP/2
detection has no timeout), so `/v2/health/live` timed out for everyone else, with no key needed.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.onnx_models import add_model
from tests.helpers.server_process import ServerProcess

pytestmark = pytest.mark.server

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("conn") / "data", "--device", "cpu", "--max-queue-size", "8",
                           "--header-timeout-s", str(HEADER_TIMEOUT_S), "--body-timeout-s", str(BODY_TIMEOUT_S)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key(srv: ServerProcess) -> str:
    return srv.create_key("conn admin", "admin")


@pytest.fixture(scope="module")
def model(srv: ServerProcess, key: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = add_model(tmp_path_factory.mktemp("m") / "add.onnx")
    answer = httpx.post(f"{srv.url}/api/v1/models/add/versions", content=path.read_bytes(), timeout=120,
                        headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 201, answer.text
    return "add"


def _room_for(sockets: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < sockets + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, sockets + 256), hard))


def _health_seconds(url: str) -> float:
    start = time.monotonic()
    assert httpx.get(f"{url}/v2/health/live", timeout=10).status_code == 200
    return time.monotonic() - start


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_connections_past_the_old_limit_leave_health_answering_and_are_closed(srv: ServerProcess) -> None:
    _room_for(1200)
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(1100)]
    try:
        assert _health_seconds(srv.url) < 2
        time.sleep(HEADER_TIMEOUT_S + 2)
        closed = sum(_closed_by_server(s) for s in idle)
        assert closed == len(idle), f"{len(idle) - closed} idle connections still held after the header timeout"
    finally:
        for s in idle:
            s.close()


def test_slow_headers_are_cut_off(srv: ServerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    sock.settimeout(HEADER_TIMEOUT_S + 5)
    start = time.monotonic()
    data = sock.recv(1000)
    assert time.monotonic() - start < HEADER_TIMEOUT_S + 3
    assert b"200" not in data.split(b"\r\n", 1)[0]
    sock.close()


def _stalled(port: int, head: bytes) -> tuple[float, int, dict, bytes]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head)
    sock.settimeout(BODY_TIMEOUT_S + 10)
    start = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    status = int(data.split(b" ", 2)[1])
    head_out, body = data.split(b"\r\n\r\n", 1)
    return time.monotonic() - start, status, json.loads(body), head_out.lower()


@pytest.mark.parametrize("framing", [b"Content-Length: 1000\r\n\r\n{\"inputs\"",
                                     b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"inp\r\n"])
def test_a_stalled_inference_body_is_answered_408(srv: ServerProcess, key: str, model: str, framing: bytes) -> None:
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n").encode() + framing
    seconds, status, body, headers = _stalled(srv.port, head)
    assert status == 408 and body["code"] == "body_timeout" and b"x-content-type-options: nosniff" in headers
    assert BODY_TIMEOUT_S - 0.5 < seconds < BODY_TIMEOUT_S + 3


def test_a_stalled_upload_is_answered_408_and_leaves_nothing(srv: ServerProcess, key: str) -> None:
    head = (f"POST /api/v1/models/stalled/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n").encode() + b"\x08" * 5000
    seconds, status, body, headers = _stalled(srv.port, head)
    assert status == 408 and body["code"] == "body_timeout", body
    assert b"x-content-type-options: nosniff" in headers
    assert seconds < BODY_TIMEOUT_S + 3
    models = httpx.get(f"{srv.url}/api/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
    assert "stalled" not in [m["name"] for m in models]
    incoming = Path(srv.data_dir) / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


async def _flood(port: int, model: str, key: str, connections: int, seconds: float) -> dict[int, int]:
    body = json.dumps({"inputs": [{"name": n, "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                                  for n in ("a", "b")]}).encode()
    request = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    counts: dict[int, int] = {}
    stop = time.monotonic() + seconds

    async def client() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts[0] = counts.get(0, 0) + 1
            return
        try:
            while time.monotonic() < stop:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                counts[status] = counts.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError):
            counts[-1] = counts.get(-1, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return counts


def test_health_answers_promptly_under_overload_from_more_clients_than_the_old_limit(
        srv: ServerProcess, key: str, model: str) -> None:
    _room_for(1400)
    result: dict[str, dict[int, int]] = {}

    def flood() -> None:
        result["counts"] = asyncio.run(_flood(srv.port, model, key, 1200, 8.0))

    import threading
    thread = threading.Thread(target=flood)
    thread.start()
    time.sleep(3)  # the flood is connected and sending
    slowest = max(_health_seconds(srv.url) for _ in range(5))
    thread.join()
    counts = result["counts"]
    assert counts.get(200, 0) > 0 and set(counts) <= {200, 503}, counts
    assert slowest < 3, f"health took {slowest:.1f} s under overload ({counts})"
