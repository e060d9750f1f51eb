"""CSRF tokens for the console: one random token per session, sent back in a form field or a header.

A POST (or other unsafe method) made with the session cookie must carry the session's token, as the hidden
form field ``csrf_token`` or, for htmx and fetch requests, the header ``X-CSRF-Token``. Requests with a
Bearer API key carry no cookie, so they need no token.
"""

from __future__ import annotations

import hmac
import secrets

from litestar import Request

from flashml.errors import ForbiddenError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """True when ``given`` is the session's token; constant time, and never for an empty token."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def require_csrf(expected: str | None, given: str | None) -> None:
    if not csrf_matches(expected, given):
        raise ForbiddenError("This form is missing its security token or the token is wrong; reload the page and "
                             "try again.", code="csrf_failed")


async def submitted_csrf(request: Request) -> str | None:
    """The token the request carries: the header, else the form field of a form post."""
    given = request.headers.get(CSRF_HEADER)
    if given:
        return given
    if request.headers.get("content-type", "").split(";")[0].strip().lower() in _FORM_TYPES:
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, expected: str | None) -> None:
    """Raise 403 ``csrf_failed`` unless a request with an unsafe method carries the session's token."""
    if request.method.upper() in SAFE_METHODS:
        return
    require_csrf(expected, await submitted_csrf(request))
