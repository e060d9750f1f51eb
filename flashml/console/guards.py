"""Who may use a console page: checked by guards, once, for every console controller.

``ConsoleController`` (``flashml.console.pages``) runs two guards before any of its handlers:

* ``signed_in``: the session cookie names a live session, else ``SignedOutError``, which every console
  controller answers with the one sign-in redirect (``sign_in_first``). The user is left in the request's
  state for the handler's ``user: SignedIn`` parameter, and for the navigation of an error page.
* ``session_csrf``: a POST, PUT, PATCH or DELETE made with a session carries that session's CSRF token (the
  form field or the header, ``flashml.auth.csrf``), else 403 ``csrf_failed``.

A role is one more guard, on the handler: ``guards=[needs_role("maintainer")]``, answering the API's
403 ``role_forbidden``. Only checks that depend on the data (the role of the key being changed) stay in the
handler, through the same ``require_role``. The sign-in and first-run forms come before any session: they
check their own signed token (``SignInService.pre_session``).
"""

from __future__ import annotations

from typing import TypeAlias
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.plugins.htmx import ClientRedirect, HTMXDetails
from litestar.response import Redirect
from litestar.types import Guard

from flashml.auth.csrf import SAFE_METHODS, check_csrf
from flashml.auth.principal import require_role
from flashml.auth.sign_ins import SESSION_COOKIE, SessionUser
from flashml.telemetry.request_context import note_caller

CONSOLE_USER = "console_user"  # the request state's key for the signed-in user

# A handler's signed-in user: ``user: SignedIn``.
SignedIn: TypeAlias = NamedDependency[SessionUser]


class SignedOutError(Exception):
    """The request has no live session: answered by ``sign_in_first``."""


async def _session_user(connection: ASGIConnection) -> SessionUser | None:
    found: SessionUser | None = connection.state.get(CONSOLE_USER)
    if found is None:
        found = await connection.app.state.services.sign_ins.resolve(connection.cookies.get(SESSION_COOKIE))
        if found is not None:
            connection.state[CONSOLE_USER] = found
            note_caller(found.name)  # the access log's line names the console user
    return found


async def signed_in(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: a live session, else ``SignedOutError``."""
    if await _session_user(connection) is None:
        raise SignedOutError


async def session_csrf(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: a change made with a session carries the session's CSRF token. Without a session there is
    nothing a forged request could act as (sign-out then only clears the cookie)."""
    if not isinstance(connection, Request) or connection.method in SAFE_METHODS:
        return
    user = await _session_user(connection)
    if user is not None:
        await check_csrf(connection, user.csrf_token)


def needs_role(role: str) -> Guard:
    """Guard: the signed-in user has ``role`` or a stronger one (after ``signed_in``)."""
    async def has_role(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        require_role(connection.state[CONSOLE_USER].principal(), role)

    has_role.__name__ = f"needs_{role}"
    return has_role


def signed_in_user(request: Request) -> SessionUser:
    """The ``user`` dependency: the user the ``signed_in`` guard found."""
    user: SessionUser = request.state[CONSOLE_USER]
    return user


# ---- the one sign-in redirect ----

def login_url(page: str) -> str:
    """The sign-in form, coming back to ``page`` afterwards."""
    return f"/login?next={quote(page, safe='')}"


def _referring_page(request: Request) -> str | None:
    """The page of this site that sent the request (Referrer-Policy same-origin keeps it to our own pages)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return None


def sign_in_first(request: Request, _: Exception) -> Response:
    """Every console controller's answer to a signed-out request: the sign-in form, then back to the page.

    An htmx request (a polled or swapped part of a page) gets a client redirect (``HX-Redirect``), so the
    whole page goes to the sign-in form, not the part; it comes back to the page the browser shows. A form
    post has no page of its own: it comes back to the page the form was on.
    """
    htmx = HTMXDetails(request)  # the plugin's reading of htmx's request headers
    if htmx:
        return ClientRedirect(login_url(htmx.current_url_abs_path or _referring_page(request) or "/"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in SAFE_METHODS:
        return Redirect(login_url(_referring_page(request) or here), status_code=303)
    # The console's home needs no way back: signing in lands there anyway.
    return Redirect("/login" if here == "/" else login_url(here), status_code=303)
