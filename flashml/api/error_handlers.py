"""Turn every error into the one JSON shape: ``{"error": sentence, "code": machine_code, "details"?,
"request_id"}``.

A browser that asks for a console page (or posts one of its plain forms) gets the same sentence on a page
instead (templates/error.html): raw JSON is no answer to a person. API paths and htmx requests keep JSON.
Both show the request's id (``X-Request-Id``), which a person can quote and an operator find in the log.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from flashml.db.engine import unreachable
from flashml.errors import FlashMLError
from flashml.telemetry.request_context import request_id

log = logging.getLogger("flashml.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
               429: "too_many_requests", 503: "unavailable"}


TOO_LARGE = "The request body is larger than this server accepts (setting max_request_bytes)."
INTERNAL = "The server failed to handle this request; its log has the details."


def with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the current request's id added (for an error answered without raising, too)."""
    current = request_id.get()  # None only when Litestar runs without flashml.server (in-process tests)
    if current is not None:
        body["request_id"] = current
    return body


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    with_request_id(body)
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


_API_PREFIXES = ("/api/", "/v2/", "/schema", "/static/")


def _wants_page(request: Request) -> bool:
    if request.url.path.startswith(_API_PREFIXES) or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _back(request: Request) -> str:
    """The page the form was on (same site only), to go back to; else the console's home."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


def _answer(request: Request, status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    if _wants_page(request):
        return Template("error.html", status_code=status, headers=headers,
                        context={"status": status, "message": body["error"], "code": body["code"],
                                 "back": _back(request), "request_id": request_id.get()})
    return _json(status, body, headers)


def flashml_error_handler(request: Request, exc: FlashMLError) -> Response:
    return _answer(request, exc.status, exc.to_body(), exc.headers)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    body: dict[str, Any] = {"error": _sentence(status, exc), "code": _HTTP_CODES.get(status, f"http_{status}")}
    if isinstance(exc, ValidationException) and exc.extra:
        body["details"] = {"problems": exc.extra}
        body["code"] = "invalid_request"
    return _answer(request, status, body, exc.headers)


def _sentence(status: int, exc: HTTPException) -> str:
    if status == 413:
        return TOO_LARGE
    if status == 404:
        return "There is nothing at this address."
    if status == 405:
        return "This address does not take that HTTP method."
    detail = str(exc.detail or "")
    return detail if detail.endswith(".") else f"{detail}."


DATABASE_UNAVAILABLE = "The database does not answer just now; try again in a few seconds."


def internal_error_handler(request: Request, exc: Exception) -> Response:
    if unreachable(exc):  # a database outage is the operator's to fix, not a bug: no traceback, a 503
        log.warning("the database did not answer on %s %s (%s)", request.method, request.url.path,
                    type(exc).__name__)
        return _answer(request, 503, {"error": DATABASE_UNAVAILABLE, "code": "database_unavailable"},
                       {"Retry-After": "5"})
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, {"error": INTERNAL, "code": "internal_error"})


EXCEPTION_HANDLERS: ExceptionHandlersMap = {FlashMLError: flashml_error_handler, HTTPException: http_error_handler,
                      Exception: internal_error_handler}
