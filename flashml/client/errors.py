"""ClientError: what every failed call of flashml.client raises, HTTP or not."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A call that did not succeed: the server's answer (``status``, its machine-readable ``code``, its sentence and
    the request's id to quote), or ``status`` None when no answer came (``code`` ``unreachable``) or the call never
    left (``unknown_profile``, ``bad_profile_file``, ``no_key``)."""

    def __init__(self, status: int | None, code: str, message: str, request_id: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        if self.status is None:
            return f"{self.message} [{self.code}]"
        text = f"HTTP {self.status}: {self.message} [{self.code}]"
        return text + (f" (request {self.request_id})" if self.request_id else "")
