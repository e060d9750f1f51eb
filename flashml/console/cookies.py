"""The console's cookies: the session, and the signed pre-session CSRF token of the sign-in and setup forms.

Both are HttpOnly and SameSite=Strict, and Secure when the browser came over HTTPS (see auth/transport.py).
"""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import Cookie

from flashml.auth.csrf import PRE_SESSION_COOKIE
from flashml.auth.sign_ins import SESSION_COOKIE
from flashml.auth.transport import request_is_https
from flashml.settings import Settings

PRE_SESSION_MAX_AGE_S = 3600 * 24  # a sign-in page left open for a day still works


def is_https(request: Request, settings: Settings) -> bool:
    return request_is_https(request, settings.trusted_proxies)


def _cookie(key: str, value: str, *, secure: bool, max_age: int | None) -> Cookie:
    return Cookie(key=key, value=value, path="/", httponly=True, samesite="strict", secure=secure, max_age=max_age)


def session_cookie(request: Request, settings: Settings, value: str, max_age: int) -> Cookie:
    """The session cookie; ``max_age=0`` with an empty value ends it in the browser."""
    return _cookie(SESSION_COOKIE, value, secure=is_https(request, settings), max_age=max_age)


def pre_session_cookie(request: Request, settings: Settings, token: str) -> Cookie:
    return _cookie(PRE_SESSION_COOKIE, token, secure=is_https(request, settings), max_age=PRE_SESSION_MAX_AGE_S)
