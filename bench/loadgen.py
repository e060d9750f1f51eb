"""A closed-loop HTTP/1.1 load generator for machines without ``wrk`` (the GPU machine has no Debian packages).

Each client is one keep-alive connection that sends the same POST again as soon as the answer is in, as wrk
does. The clients are spread over several processes (one event loop each), so the generator is not bound
by one core the way a single Python loop would be at hundreds of requests per second with large bodies.

    from bench import loadgen
    loadgen.drive("http://127.0.0.1:8000/v2/models/m/infer", clients=32, seconds=5, body=b"...",
                  headers={"Authorization": "Bearer ..."})

It returns what ``bench.run.wrk`` returns: requests/s, p50 and p99 in ms, the count of answers that were not
2xx, and the count of requests.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from urllib.parse import urlsplit

import numpy as np


def _request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return parts.hostname or "127.0.0.1", parts.port or 80, "\r\n".join(lines).encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _client(host: str, port: int, payload: bytes, deadline: float, latencies: list[float],
                  statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status = await _read_answer(reader)
            latencies.append(time.perf_counter() - start)
            statuses.append(status)
    finally:
        writer.close()


async def _process_main(url: str, clients: int, seconds: float, body: bytes, headers: dict[str, str],
                        start_at: float) -> tuple[list[float], list[int], float]:
    host, port, payload = _request(url, body, headers)
    await asyncio.sleep(max(0.0, start_at - time.time()))  # every process starts at the same moment
    began = time.perf_counter()
    deadline = began + seconds
    latencies: list[float] = []
    statuses: list[int] = []
    await asyncio.gather(*(_client(host, port, payload, deadline, latencies, statuses) for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - began  # the last answers come in after the deadline


def _worker(args: tuple) -> tuple[list[float], list[int], float]:
    return asyncio.run(_process_main(*args))


def drive(url: str, clients: int, seconds: float, body: bytes, headers: dict[str, str],
          processes: int | None = None) -> dict:
    """Run ``clients`` closed-loop connections for ``seconds``; the figures wrk reports."""
    if processes is None:
        processes = max(1, min(clients, (os.cpu_count() or 2) // 2, 8))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    start_at = time.time() + 0.5
    ctx = multiprocessing.get_context("spawn")  # no forked copy of the caller's threads or sessions
    with ctx.Pool(processes) as pool:
        parts = pool.map(_worker, [(url, n, seconds, body, headers, start_at) for n in shares if n])
    elapsed = max(p[2] for p in parts)
    latencies = np.array([x for lat, _, _ in parts for x in lat]) * 1000
    statuses = [s for _, st, _ in parts for s in st]
    return {"rps": len(statuses) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else 0.0,
            "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else 0.0,
            "non_2xx": sum(1 for s in statuses if not 200 <= s < 300), "requests": len(statuses)}
