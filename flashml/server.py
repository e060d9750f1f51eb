"""The object Granian serves (RSGI): V2 inference on a short path, everything else through Litestar.

Inference is the hot path. For a small model, Litestar's routing, its dependency injection (a task group per
request) and ASGI's message dictionaries cost more than the inference work itself, all on the one event loop
thread every request shares (py-spy, bench/README.md). So ``POST /v2/models/{m}[/versions/{v}]/infer`` is
answered here, with ``answer_infer`` (the same call the Litestar route makes), and every other request goes
to Litestar through ``asgi_bridge``. Litestar's lifespan (services, model loading) runs at start and stop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Any

from granian.asgi import LifespanProtocol

from flashml.api.access_log import AccessLog, model_of
from flashml.api.asgi_bridge import BODY_STALLED, error_json, run_asgi
from flashml.api.error_handlers import DATABASE_UNAVAILABLE, INTERNAL, TOO_LARGE
from flashml.api.security_headers import fast_path_headers, forwarded_https
from flashml.api.v2_infer import HEADER_LENGTH_KEY, ROUTING_HEADER, TIMEOUT_HEADER, answer_infer, error_body
from flashml.db.engine import unreachable
from flashml.errors import FlashMLError
from flashml.telemetry import request_context

log = logging.getLogger("flashml.api")

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer/?")
VERSION_HEADER = "FlashML-Model-Version"  # as the inference service names it in the answer's headers
MIN_BODY_RATE = 1024 * 1024  # bytes/s: a body with a length may take body_timeout_s plus length at this rate
JSON = [("content-type", "application/json")]


class FlashMLServer:
    """RSGI application around the Litestar app (``app``)."""

    def __init__(self, app: Any, max_body_bytes: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self._lifespan: LifespanProtocol | None = None
        self._headers = {False: fast_path_headers(False), True: fast_path_headers(True)}  # plain, HTTPS
        self._trusted: tuple[str, ...] = ()
        self._access = AccessLog(False)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._lifespan = LifespanProtocol(self.app)
        loop.run_until_complete(self._lifespan.startup())
        if self._lifespan.interrupt:
            log.error("start-up failed", exc_info=self._lifespan.exc)
            sys.exit(1)
        services = getattr(self.app.state, "services", None)
        self._trusted = tuple(services.settings.trusted_proxies) if services is not None else ()
        if services is not None:
            self._access = AccessLog(services.settings.access_log, self._trusted)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._lifespan is not None:
            loop.run_until_complete(self._lifespan.shutdown())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            protocol.close(403)  # no websockets here
            return
        started = time.perf_counter()
        context = request_context.begin(scope.headers.get(request_context.HEADER))
        match = INFER_PATH.fullmatch(scope.path) if scope.method == "POST" else None
        if match is None:
            answered = await run_asgi(self.app, scope, protocol, self._lifespan.state if self._lifespan else {},
                                      self.body_timeout_s, context.request_id)
            if self._access.wanted():
                model, version = model_of(scope.path, answered.headers)
                self._access.write(scope, context, started, answered.status, answered.bytes_in, answered.bytes_out,
                                   model, version)
            return
        status, bytes_in, bytes_out, version = await self._infer(scope, protocol, match, context.request_id)
        if self._access.wanted():
            self._access.write(scope, context, started, status, bytes_in, bytes_out, match[1], version)

    async def _infer(self, scope: Any, protocol: Any, match: re.Match[str],
                     request_id: str) -> tuple[int, int, int, str | None]:
        """Answer one V2 inference request; its status, body sizes in and out, and the version that answered."""
        headers = scope.headers
        security = [*self._headers[scope.scheme == "https" or (bool(self._trusted) and forwarded_https(
            headers.get("x-forwarded-proto"), scope.client.rpartition(":")[0].strip("[]"), self._trusted))],
            ("x-request-id", request_id)]
        body: bytes | None = None
        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                return self._error(protocol, 413, TOO_LARGE, "payload_too_large", security, request_id)
            # With a length (checked above) the body comes in one call, within a deadline that grows with the
            # length; without one it is read in chunks, each within body_timeout_s. A stalled client is let go.
            try:
                if length is not None and length.isdigit():
                    async with asyncio.timeout(self.body_timeout_s + int(length) / MIN_BODY_RATE):
                        body = await protocol()
                else:
                    body = await self._body(protocol)
            except TimeoutError:
                return self._error(protocol, 408, BODY_STALLED, "body_timeout", security, request_id)
            if body is None:
                return self._error(protocol, 413, TOO_LARGE, "payload_too_large", security, request_id)
            services = self.app.state.services
            content, out = await answer_infer(services.keys, services.inference, match[1], match[2],
                                              headers.get("authorization"), headers.get(HEADER_LENGTH_KEY),
                                              headers.get(TIMEOUT_HEADER), headers.get(ROUTING_HEADER), body)
            protocol.response_bytes(200, [*out.items(), *security], content)
            return 200, len(body), len(content), out.get(VERSION_HEADER)
        except FlashMLError as exc:
            status, content, out = error_body(exc, request_id)
            protocol.response_bytes(status, [*JSON, *out.items(), *security], content)
            return status, len(body or b""), len(content), out.get(VERSION_HEADER, match[2])
        except Exception as exc:
            if unreachable(exc):  # the key could not be read: the database is out of reach
                log.warning("the database did not answer on POST %s (%s)", scope.path, type(exc).__name__)
                return self._error(protocol, 503, DATABASE_UNAVAILABLE, "database_unavailable", security,
                                   request_id, len(body or b""))
            log.exception("unhandled error on POST %s", scope.path)
            return self._error(protocol, 500, INTERNAL, "internal_error", security, request_id,
                               len(body or b""))

    @staticmethod
    def _error(protocol: Any, status: int, message: str, code: str, headers: list[tuple[str, str]],
               request_id: str, bytes_in: int = 0) -> tuple[int, int, int, None]:
        content = error_json(message, code, request_id)
        protocol.response_bytes(status, [*JSON, *headers], content)
        return status, bytes_in, len(content), None

    async def _body(self, protocol: Any) -> bytes | None:
        """The whole body, or None past ``max_body_bytes`` (read in chunks: chunked bodies have no length)."""
        chunks, size = [], 0
        stream = protocol.__aiter__()
        while True:
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
