"""The error answers in the OpenAPI document: our ``{error, code, details}`` body and every status each
operation really answers, instead of Litestar's ``{detail, status_code}`` 400.

The statuses follow from each route as it is declared, so they stay true as routes change:

- a key or console session (the handler asks for ``principal``, ``caller``, ``viewer``, ``maintainer`` or
  ``admin``): 401 (none, unknown, revoked, session ended) and 403 (role, model scope, CSRF);
- path parameters: 404 (nothing by that name) and 400 (a value of the wrong kind);
- query parameters: 400; a request body (in the document): 400 (malformed) and 413 (over
  ``max_request_bytes``);

and ``EXTRA`` adds what depends on what a handler does (inference limits, storage, validation, conflicts).
Everything that is not a success answers the one ``Error`` schema (flashml/errors.py), and every answer,
success or not, carries the request's id in ``X-Request-Id`` (``flashml.telemetry.request_context``).
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from flashml.api.openapi_bodies import document_bodies
from flashml.web.bodies import BODY_DEPENDENCY
from flashml.web.deps import SERVICE_NAMES

REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong and what to do, in a sentence for people"},
        "code": {"type": "string", "description": "A stable machine code, e.g. model_not_found, rate_limited"},
        "details": {"type": "object", "description": "Facts about the error (retry_after_s, problems, limits...)"},
        "request_id": {"type": "string", "pattern": REQUEST_ID_PATTERN,
                       "description": "This request's id, as in the X-Request-Id header and the access log: quote it "
                                      "when reporting the error"},
    },
}
REQUEST_ID_HEADER = {"description": "The request's id: the client's X-Request-Id when it sent a sane one (1 to 128 "
                                    "of A-Z a-z 0-9 . _ : -), else one the server made",
                     "required": True, "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}}

DESCRIPTIONS = {
    400: "Bad request: malformed body, or a parameter of the wrong kind",
    401: "No API key or console session, or an unknown or revoked one",
    403: "The key or session lacks the role, model or CSRF token this needs",
    404: "Nothing by that name (model, version, key, alias, upload, job...)",
    409: "Conflicts with the current state (already exists, not ready, in use)",
    413: "The request body is larger than max_request_bytes (or an upload limit)",
    415: "A content type this operation does not take",
    422: "Well-formed but refused: the model, dataset or inputs break a rule",
    429: "Over the key's rate limit or daily quota; Retry-After says when to try again",
    503: "Not ready yet, overloaded, or the artifact store is unreachable; retry later",
    504: "The answer took longer than the request's timeout",
}

_AUTH_DEPENDENCIES = {"principal", "caller", "viewer", "maintainer", "admin"}
_INFER = (429, 503, 504)
_STORE = (409, 503)

# (methods, path pattern, statuses) for what the route's declaration does not show.
EXTRA: list[tuple[set[str], str, tuple[int, ...]]] = [
    # Authenticated inside (flashml.api.v2_infer, shared with the RSGI fast path), not by a dependency.
    ({"POST"}, r"^/v2/models/\{model\}(/versions/\{version\})?/infer$", (401, 403, *_INFER)),
    ({"POST"}, r"^/v1/models/\{model\}(/versions/\{version\})?/predict$", (*_INFER, 415, 422)),
    ({"GET"}, r"^/v2/health/ready$", (503,)),
    ({"GET"}, r"^/v2/models/", (503,)),
    ({"POST"}, r"^/api/v1/models/\{model\}/versions$", (*_STORE, 415, 422)),
    ({"POST"}, r"^/api/v1/models/\{model\}/versions/\{version\}/(archive|restore)$", _STORE),
    ({"DELETE"}, r"^/api/v1/models/", _STORE),
    ({"PATCH"}, r"^/api/v1/models/", (409,)),
    ({"POST", "PUT", "DELETE"}, r"^/api/v1/models/\{model\}/aliases", (409,)),
    ({"POST", "PUT"}, r"^/api/v1/uploads", (*_STORE, 422)),
    ({"POST"}, r"^/api/v1/datasets$", (*_STORE, 415, 422)),
    ({"DELETE"}, r"^/api/v1/datasets/", _STORE),  # in use by a job or a schedule; the store removes its file
    ({"POST"}, r"^/api/v1/jobs", (404, 409, 422, 503)),  # a job names a dataset and a model
    ({"GET"}, r"^/api/v1/jobs/\{job_id\}/result$", (409, 503)),
    ({"GET"}, r"^/api/v1/metrics$", (404,)),  # ?model= names a model
    ({"POST"}, r"^/api/v1/users$", (409,)),  # the name is taken
    ({"PATCH", "DELETE"}, r"^/api/v1/users/\{name\}$", (409,)),  # the only enabled admin
    # No key: the current password is the proof, and the sign-in brake counts each wrong one.
    ({"POST"}, r"^/api/v1/account/password$", (401, 429)),
]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _route_statuses(route: HTTPRoute, method: str, has_body: bool) -> set[int]:
    """The error statuses that the route's own declaration implies for ``method``."""
    statuses: set[int] = set()
    for handler in route.route_handlers:
        if method not in handler.http_methods:
            continue
        params = handler.parsed_fn_signature.parameters
        if _AUTH_DEPENDENCIES & set(params):
            statuses |= {401, 403}
        if route.path_parameters:
            statuses |= {400, 404}
        if set(params) - {"request", "data", BODY_DEPENDENCY, "state", "services", "sessions", *SERVICE_NAMES,
                          *_AUTH_DEPENDENCIES, *route.path_parameters}:
            statuses.add(400)  # query parameters
        reads_body = method in ("POST", "PUT", "PATCH") and {"data", "request"} & set(params)
        if has_body or reads_body:  # many handlers read the raw body themselves, undeclared
            statuses |= {400, 413}
    return statuses


def error_statuses(route: HTTPRoute, method: str, path: str, has_body: bool) -> set[int]:
    """Every error status that operation ``method path`` answers."""
    statuses = _route_statuses(route, method, has_body)
    for methods, pattern, extra in EXTRA:
        if method in methods and re.search(pattern, path):
            statuses |= set(extra)
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before trying again",
                                               "schema": {"type": "integer"}}}
    return response


def _with_request_id(response: dict[str, Any]) -> None:
    response.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID_HEADER


def document_errors(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """A copy of ``schema`` whose operations list their error answers with the ``Error`` body."""
    doc = deepcopy(schema)
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    by_path = {r.path_format: r for r in routes if isinstance(r, HTTPRoute)}
    for path, item in doc.get("paths", {}).items():
        route = by_path.get(path)
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in [c for c in responses if not c.startswith("2")]:
                del responses[code]  # Litestar's {detail, status_code} shape: not what we answer
            has_body = "requestBody" in operation
            statuses = error_statuses(route, method.upper(), path, has_body) if route is not None else set()
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status)
            for response in responses.values():
                _with_request_id(response)
    return doc


class ErrorDocumentPlugin(JsonRenderPlugin):
    """Serves /schema/openapi.json with the error answers and the typed request bodies documented (computed
    once)."""

    def __init__(self) -> None:
        super().__init__()
        self._document: dict[str, Any] | None = None

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        if self._document is None:
            with_bodies = deepcopy(openapi_schema)
            document_bodies(with_bodies, request.app.routes)
            self._document = document_errors(with_bodies, request.app.routes)
        return self.render_json(request, self._document)
