"""Turn every error into the one JSON shape: ``{"error": sentence, "code": machine_code, "details"?}``."""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from flashml.errors import FlashMLError

log = logging.getLogger("flashml.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
               429: "too_many_requests", 503: "unavailable"}


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def flashml_error_handler(_: Request, exc: FlashMLError) -> Response:
    return _json(exc.status, exc.to_body(), exc.headers)


def http_error_handler(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    body = {"error": _sentence(status, exc), "code": _HTTP_CODES.get(status, f"http_{status}")}
    if isinstance(exc, ValidationException) and exc.extra:
        body["details"] = {"problems": exc.extra}
        body["code"] = "invalid_request"
    return _json(status, body, exc.headers)


def _sentence(status: int, exc: HTTPException) -> str:
    if status == 413:
        return "The request body is larger than this server accepts (setting max_request_bytes)."
    if status == 404:
        return "There is nothing at this address."
    if status == 405:
        return "This address does not take that HTTP method."
    detail = str(exc.detail or "")
    return detail if detail.endswith(".") else f"{detail}."


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, {"error": "The server failed to handle this request; its log has the details.",
                       "code": "internal_error"})


EXCEPTION_HANDLERS = {FlashMLError: flashml_error_handler, HTTPException: http_error_handler,
                      Exception: internal_error_handler}
