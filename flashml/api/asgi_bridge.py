"""Run an ASGI app (Litestar) for one request that Granian hands over through RSGI, its native interface.

FlashML serves on RSGI so that inference skips the cost of ASGI's message dictionaries (``flashml.server``);
everything else (the console, the management API, static files) still runs on Litestar through this bridge.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, NamedTuple
from urllib.parse import quote

from flashml.api.security_headers import fast_path_headers

ASGI = {"version": "3.0", "spec_version": "2.3"}
BODY_STALLED = "The request body stopped arriving; send it again (setting body_timeout_s)."
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _address(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


def asgi_scope(scope: Any, state: dict[str, Any]) -> dict[str, Any]:
    # Granian hands over the path already percent-decoded (invalid UTF-8 as U+FFFD): decoding it again would
    # turn %2525 into %, and any text may be in it, so raw_path is re-quoted, never encoded as Latin-1.
    path = scope.path
    return {
        "type": "http", "asgi": ASGI, "http_version": scope.http_version, "method": scope.method,
        "scheme": scope.scheme, "path": path, "raw_path": quote(path, safe=_PATH_SAFE).encode("ascii"),
        "root_path": "", "query_string": scope.query_string.encode("utf-8", "replace"),
        "headers": [(k.lower().encode("latin-1", "replace"), v.encode("latin-1", "replace"))
                    for k, v in scope.headers.items()],
        "client": _address(scope.client), "server": _address(scope.server), "state": state.copy(),
    }


class Answered(NamedTuple):
    """What the access log needs of an answer: its status, the body sizes, and its headers (None: no answer)."""

    status: int
    bytes_in: int
    bytes_out: int
    headers: list[tuple[str, str]] | None


def error_json(message: str, code: str, request_id: str | None) -> bytes:
    """An error body in the one shape, for answers that never reach Litestar's error handlers."""
    body = {"error": message, "code": code}
    if request_id is not None:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def _answer_stalled(protocol: Any, scope: Any, request_id: str | None) -> int:
    """408 with the headers every answer carries (this one never passes Litestar's hook); its size."""
    headers = [("content-type", "application/json"), *fast_path_headers(scope.scheme == "https")]
    if request_id is not None:
        headers.append(("x-request-id", request_id))
    content = error_json(BODY_STALLED, "body_timeout", request_id)
    protocol.response_bytes(408, headers, content)
    return len(content)


async def _client_gone(protocol: Any) -> None:
    await protocol.client_disconnect()


async def run_asgi(app: Any, scope: Any, protocol: Any, state: dict[str, Any], body_timeout_s: float = 30.0,
                   request_id: str | None = None) -> Answered:
    """One HTTP request through ``app``: the body streams in, the answer goes out whole or streamed, with
    ``X-Request-Id: request_id`` added to its headers.

    A body whose next piece takes longer than ``body_timeout_s`` reads as a disconnect to the app, and the
    client gets 408: a stalled upload frees its handler instead of holding it forever.
    """
    body = protocol.__aiter__()
    body_done = stalled = False
    response: dict[str, Any] = {}  # status and headers, once the app starts its answer
    stream = None
    bytes_in = bytes_out = 0
    answered = asyncio.Event()  # the app sent its last body piece

    async def receive() -> dict[str, Any]:
        nonlocal body_done, stalled, bytes_in
        if not body_done:
            try:
                async with asyncio.timeout(body_timeout_s):
                    chunk = await body.__anext__()
                bytes_in += len(chunk)
                return {"type": "http.request", "body": chunk, "more_body": True}
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except TimeoutError:
                body_done = stalled = True
                return {"type": "http.disconnect"}
        # The request is over when the client hangs up or the answer is complete, as ASGI servers report it: an
        # app that listens for a disconnect while it streams (Litestar's Stream) would otherwise wait for the client.
        if not answered.is_set():
            gone = asyncio.ensure_future(_client_gone(protocol))
            done = asyncio.ensure_future(answered.wait())
            await asyncio.wait((gone, done), return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            done.cancel()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal stream, bytes_out
        kind = message["type"]
        if stalled:  # whatever the app makes of the "disconnect", the client gets the reason
            if kind == "http.response.start":
                response["status"] = 408
            elif not message.get("more_body", False) and stream is None:
                bytes_out = _answer_stalled(protocol, scope, request_id)
            return
        if kind == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
            if request_id is not None:
                response["headers"].append(("x-request-id", request_id))
        elif kind == "http.response.body":
            chunk, more = message.get("body", b""), message.get("more_body", False)
            bytes_out += len(chunk)
            if not more:
                answered.set()
            if stream is None and not more:
                protocol.response_bytes(response["status"], response["headers"], chunk)
                return
            if stream is None:
                stream = protocol.response_stream(response["status"], response["headers"])
            if chunk:
                await stream.send_bytes(chunk)
            if not more:  # Granian ends a streamed answer when its transport goes: now, not when the GC finds it
                stream = None

    await app(asgi_scope(scope, state), receive, send)
    if not response:  # the app ended without answering (ASGI servers answer 500 then)
        if stalled:
            return Answered(408, bytes_in, _answer_stalled(protocol, scope, request_id), None)
        protocol.response_empty(500, [("x-request-id", request_id)] if request_id is not None else [])
        return Answered(500, bytes_in, 0, None)
    return Answered(response["status"], bytes_in, bytes_out, response.get("headers"))
