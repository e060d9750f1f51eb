"""One V2 inference call from its raw parts: what both the fast path (``flashml.server``) and the Litestar
route in ``v2.py`` (which documents the operation in OpenAPI) run, so they give the same answers and errors."""

from __future__ import annotations

import json

from flashml.auth.keys import KeyService
from flashml.errors import BadRequestError, FlashMLError
from flashml.inference.service import InferenceService
from flashml.protocol.v2_response import HEADER_LENGTH
from flashml.telemetry.request_context import note_caller

HEADER_LENGTH_KEY = HEADER_LENGTH.lower()  # header names as the servers hand them over
TIMEOUT_HEADER = "flashml-timeout-ms"  # or Triton's `timeout` request parameter (microseconds)
MAX_TIMEOUT_MS = 86_400_000
ROUTING_HEADER = "flashml-routing-key"  # sticks a caller to one side of an alias's split (default: the key id)


async def answer_infer(keys: KeyService, inference: InferenceService, model: str, version: str | None,
                       authorization: str | None, header_length: str | None, timeout_ms: str | None,
                       routing_key: str | None, body: bytes) -> tuple[bytes, dict[str, str]]:
    """Authenticate, then run one V2 request; returns the body and its headers (content type included)."""
    principal = await keys.authenticate(authorization)
    note_caller(principal.name)
    content, headers = await inference.infer(principal, model, version, body, _header_length(header_length),
                                             timeout_us=_timeout_us(timeout_ms), routing_key=routing_key or None)
    headers["content-type"] = "application/octet-stream" if HEADER_LENGTH in headers else "application/json"
    return content, headers


def error_body(exc: FlashMLError, request_id: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers of an error, in the one shape every FlashML error has (with the request's
    id, for the caller to quote)."""
    body = exc.to_body()
    if request_id is not None:
        body["request_id"] = request_id
    return exc.status, json.dumps(body, separators=(",", ":")).encode(), dict(exc.headers or {})


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
    if not 0 <= ms <= MAX_TIMEOUT_MS:  # also NaN, inf and 1e308, which no clock can add
        raise BadRequestError(f"FlashML-Timeout-Ms must be a number of milliseconds from 0 to {MAX_TIMEOUT_MS} "
                              "(a day).", code="malformed_request")
    return int(ms * 1000) or None
