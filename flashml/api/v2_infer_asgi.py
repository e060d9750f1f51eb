"""The V2 inference route as a plain ASGI handler in front of Litestar: the hot path, kept short.

For a small model, Litestar's routing, its dependency injection (a task group per request) and its response
machinery cost about twice the inference work itself, on the event loop thread that every request shares
(measured with py-spy, bench/README.md). ``InferFastPath`` answers ``POST /v2/models/{m}[/versions/{v}]/infer``
directly and hands every other request to Litestar. It runs the same ``answer_infer`` as the Litestar route in
``v2.py`` (which documents the operation in OpenAPI), so both give the same answers and the same error bodies.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flashml.errors import BadRequestError, FlashMLError, UnavailableError
from flashml.protocol.v2_response import HEADER_LENGTH
from flashml.services.container import Services

log = logging.getLogger("flashml.api")

HEADER_LENGTH_KEY = HEADER_LENGTH.lower()
TIMEOUT_HEADER = "flashml-timeout-ms"  # or Triton's `timeout` request parameter (microseconds)
ROUTING_HEADER = "flashml-routing-key"  # sticks a caller to one side of an alias's split (default: the key id)
INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer/?")
TOO_LARGE = {"error": "The request body is larger than this server accepts (setting max_request_bytes).",
             "code": "payload_too_large"}
INTERNAL = {"error": "The server failed to handle this request; its log has the details.", "code": "internal_error"}


async def answer_infer(services: Services, model: str, version: str | None, authorization: str | None,
                       header_length: str | None, timeout_ms: str | None, routing_key: str | None, body: bytes
                       ) -> tuple[bytes, dict[str, str]]:
    """Authenticate, then run one V2 request; returns the body and its headers (content type included)."""
    if services.inference is None:
        raise UnavailableError("The server is starting.", code="not_ready")
    principal = await services.keys.authenticate(authorization)
    content, headers = await services.inference.infer(principal, model, version, body, _header_length(header_length),
                                                      timeout_us=_timeout_us(timeout_ms),
                                                      routing_key=routing_key or None)
    headers["content-type"] = "application/octet-stream" if HEADER_LENGTH in headers else "application/json"
    return content, headers


class InferFastPath:
    """ASGI app: V2 inference here, everything else (and the lifespan) to ``app``."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def __getattr__(self, name: str) -> Any:  # app.state, app.openapi_schema, ...: the wrapped app's
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = INFER_PATH.fullmatch(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        status = 200
        try:
            body = await self._body(headers.get("content-length"), receive)
            if body is None:
                return  # the client went away
            content, out = await answer_infer(self.app.state.services, match[1], match[2],
                                              headers.get("authorization"), headers.get(HEADER_LENGTH_KEY),
                                              headers.get(TIMEOUT_HEADER), headers.get(ROUTING_HEADER), body)
        except FlashMLError as exc:
            status, content, out = exc.status, _json(exc.to_body()), dict(exc.headers or {})
        except _TooLarge:
            status, content, out = 413, _json(TOO_LARGE), {}
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            status, content, out = 500, _json(INTERNAL), {}
        out.setdefault("content-type", "application/json")
        out["content-length"] = str(len(content))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]})
        await send({"type": "http.response.body", "body": content})

    async def _body(self, content_length: str | None, receive: Any) -> bytes | None:
        if content_length is not None and content_length.isdigit() and int(content_length) > self.max_body_bytes:
            raise _TooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _TooLarge(Exception):
    pass


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _json(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _header_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise BadRequestError("Inference-Header-Content-Length must be a non-negative integer.",
                              code="malformed_request")
    return n


def _timeout_us(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not ms >= 0:
        raise BadRequestError("FlashML-Timeout-Ms must be a non-negative number of milliseconds.",
                              code="malformed_request")
    return int(ms * 1000) or None
