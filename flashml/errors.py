"""One error base class that carries its HTTP status; one JSON shape for every error.

Every error body is ``{"error": "<a sentence for people>", "code": "<machine code>", "details": {...}}``.
The ``error`` key is what the KServe V2 protocol asks for, so V2 clients read the same body.
"""

from __future__ import annotations

import math
from typing import Any


class FlashMLError(Exception):
    """Base of every error we raise on purpose. Subclasses set ``status`` and ``code``."""

    status: int = 500
    code: str = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


class BadRequestError(FlashMLError):
    status = 400
    code = "bad_request"


class TensorError(BadRequestError):
    """An inference request whose tensors do not fit the model's signature."""

    code = "invalid_tensor"


class UnauthorizedError(FlashMLError):
    status = 401
    code = "unauthorized"


class ForbiddenError(FlashMLError):
    status = 403
    code = "forbidden"


class NotFoundError(FlashMLError):
    status = 404
    code = "not_found"


class ConflictError(FlashMLError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(FlashMLError):
    status = 413
    code = "payload_too_large"


class ValidationFailedError(FlashMLError):
    """An uploaded model or bundle was refused. ``code`` says which rule it broke."""

    status = 422
    code = "validation_failed"


class TooManyRequestsError(FlashMLError):
    """A key over its rate limit (``rate_limited``) or daily quota (``quota_exceeded``); says when to retry."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(message, code=code, details={**(details or {}), "retry_after_s": seconds})
        self.retry_after_s = seconds
        self.headers = {"Retry-After": str(seconds)}


class UnavailableError(FlashMLError):
    status = 503
    code = "unavailable"


class GatewayTimeoutError(FlashMLError):
    status = 504
    code = "timeout"
