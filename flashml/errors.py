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


# What a name or id points at does not exist: one class per kind, so each sentence is written once.

class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"There is no model named {model!r}.")


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"

    def __init__(self, model: str, version: int) -> None:
        super().__init__(f"Model {model!r} has no version {version}.")


class AliasNotFoundError(NotFoundError):
    code = "alias_not_found"

    def __init__(self, model: str, alias: str) -> None:
        super().__init__(f"Model {model!r} has no alias {alias!r}.")


class KeyNotFoundError(NotFoundError):
    code = "key_not_found"

    def __init__(self, key_id: int | str) -> None:
        super().__init__(f"There is no API key with id {key_id}.")


class UserNotFoundError(NotFoundError):
    code = "user_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no user named {name!r}.")


class DatasetNotFoundError(NotFoundError):
    code = "dataset_not_found"

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"There is no dataset {dataset_id!r}.")


class JobNotFoundError(NotFoundError):
    code = "job_not_found"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"There is no job {job_id}.")


class ScheduleNotFoundError(NotFoundError):
    code = "schedule_not_found"

    def __init__(self, schedule_id: int) -> None:
        super().__init__(f"There is no schedule {schedule_id}.")


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
