"""CSRF tokens for the console: one random token per session, sent back in a form field or a header.

A POST (or other unsafe method) made with the session cookie must carry the session's token, as the hidden
form field ``csrf_token`` or, for htmx and fetch requests, the header ``X-CSRF-Token``. Requests with a
Bearer API key carry no cookie, so they need no token. ``check_csrf`` is called in two places only: the
console's ``session_csrf`` guard (``flashml.console.guards``, every console controller) and the JSON API's
``authenticate_caller`` (``flashml.web.deps``). Litestar's own CSRF middleware is not used: its token is a
signed cookie of its own, not bound to the session.
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


# ---- before a session exists: the sign-in and first-run setup forms ----
# A signed double-submit token: the page sets it in a cookie and in the form; a POST must carry both, equal,
# with a valid signature. A cross-site form cannot read the cookie (and SameSite=Strict does not send it), and
# a cookie planted by a neighbour host fails the signature. The key is shared by every node of one database
# (cluster_secrets, read at start by SignInService.start), so a form one node rendered can be posted to another
# behind a load balancer, and it survives restarts.
PRE_SESSION_COOKIE = "flashml_csrf"
PRE_SESSION_SECRET = "pre_session_csrf"  # its name in cluster_secrets


def new_pre_session_key() -> str:
    return secrets.token_hex(32)


class PreSessionTokens:
    """Sign and check the pre-session tokens with one key (hex, as stored in cluster_secrets)."""

    def __init__(self, key_hex: str) -> None:
        self._key = bytes.fromhex(key_hex)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), "sha256").hexdigest()

    def new_token(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        nonce, _, signature = (token or "").partition(".")
        return bool(nonce) and hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def token_for(self, request: Request) -> str:
        """The request's valid pre-session token (its cookie), else a new one for the page to set."""
        token = request.cookies.get(PRE_SESSION_COOKIE)
        return token if token and self.valid(token) else self.new_token()

    def require(self, cookie: str | None, given: str | None) -> None:
        """Raise 403 ``csrf_failed`` unless the form's token equals a validly signed cookie."""
        if not self.valid(cookie):
            given = None
        require_csrf(cookie, given)
