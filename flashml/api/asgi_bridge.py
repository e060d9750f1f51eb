"""Run an ASGI app (Litestar) for one request that Granian hands over through RSGI, its native interface.

FlashML serves on RSGI so that inference skips the cost of ASGI's message dictionaries (``flashml.server``);
everything else (the console, the management API, static files) still runs on Litestar through this bridge.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

ASGI = {"version": "3.0", "spec_version": "2.3"}


def _address(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


def asgi_scope(scope: Any, state: dict[str, Any]) -> dict[str, Any]:
    path = scope.path
    return {
        "type": "http", "asgi": ASGI, "http_version": scope.http_version, "method": scope.method,
        "scheme": scope.scheme, "path": unquote(path), "raw_path": path.encode("latin-1"), "root_path": "",
        "query_string": scope.query_string.encode("latin-1"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": _address(scope.client), "server": _address(scope.server), "state": state.copy(),
    }


async def run_asgi(app: Any, scope: Any, protocol: Any, state: dict[str, Any]) -> None:
    """One HTTP request through ``app``: the body streams in, the answer goes out whole or streamed."""
    body = protocol.__aiter__()
    body_done = False
    response: dict[str, Any] = {}  # status and headers, once the app starts its answer
    stream = None

    async def receive() -> dict[str, Any]:
        nonlocal body_done
        if not body_done:
            try:
                chunk = await body.__anext__()
                return {"type": "http.request", "body": chunk, "more_body": True}
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
        await protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal stream
        kind = message["type"]
        if kind == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
        elif kind == "http.response.body":
            chunk, more = message.get("body", b""), message.get("more_body", False)
            if stream is None and not more:
                protocol.response_bytes(response["status"], response["headers"], chunk)
                return
            if stream is None:
                stream = protocol.response_stream(response["status"], response["headers"])
            if chunk:
                await stream.send_bytes(chunk)

    await app(asgi_scope(scope, state), receive, send)
    if not response:  # the app ended without answering (ASGI servers answer 500 then)
        protocol.response_empty(500, [])
