"""The RSGI-to-ASGI bridge with a streamed answer: it ends when the app's last piece is sent, even while the client
keeps its connection open (Litestar's Stream listens for a disconnect until then). Granian's protocol is stood in
for by a small fake that behaves as Granian does: a streamed answer ends when its transport is released, and
client_disconnect() waits until the client hangs up."""

from __future__ import annotations

import asyncio
import gc
import weakref

from litestar import Litestar, get
from litestar.response import Stream

from flashml.api.asgi_bridge import run_asgi


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


class _Scope:
    proto, http_version, method, scheme = "http", "1.1", "GET", "http"
    path, query_string, server, client = "/stream", "", "127.0.0.1:8000", "127.0.0.1:5000"
    headers: dict[str, str] = {}


class _Protocol:
    """A client that keeps its connection open (it never hangs up during the test)."""

    def __init__(self) -> None:
        self.transport: weakref.ref[_Transport] | None = None
        self.status = 0

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration  # a GET: no body

    async def client_disconnect(self) -> None:
        await asyncio.Event().wait()

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> _Transport:
        transport = _Transport()
        self.status, self.transport = status, weakref.ref(transport)
        self.kept = transport.sent
        return transport


async def _pieces():
    for piece in (b"one\n", b"two\n"):
        yield piece


@get("/stream")
async def stream() -> Stream:
    return Stream(_pieces(), media_type="application/x-ndjson")


def test_a_streamed_answer_ends_with_its_last_piece_while_the_client_stays():
    litestar = Litestar([stream])
    protocol = _Protocol()
    kept = []  # as in the real server, where a reference cycle keeps the ASGI send callable until a collection

    async def app(scope, receive, send):
        kept.append(send)
        await litestar(scope, receive, send)

    async def run():
        return await asyncio.wait_for(run_asgi(app, _Scope(), protocol, {}), 5)

    gc.disable()  # the transport must go by reference counting as soon as the last piece is sent, not by a later GC
    try:
        answered = asyncio.run(run())
        assert protocol.transport is not None and protocol.transport() is None
    finally:
        gc.enable()
    assert answered.status == 200 and protocol.status == 200 and protocol.kept == [b"one\n", b"two\n"]
