"""What every signed-in console page shares: its controller's guards and dependencies, and rendering with the nav."""

from __future__ import annotations

from typing import Any

from litestar import Controller
from litestar.di import Provide
from litestar.response import Template

from flashml.auth.sign_ins import SessionUser
from flashml.console.guards import SignedOutError, session_csrf, sign_in_first, signed_in, signed_in_user
from flashml.web.deps import provide

NO_STORE = {"Cache-Control": "no-store"}  # pages and parts that show live state, or a secret once


class ConsoleController(Controller):
    """A controller of signed-in pages: sign-in and the CSRF token are checked before every handler
    (``flashml.console.guards``); a signed-out request gets the one sign-in redirect."""

    include_in_schema = False
    guards = [signed_in, session_csrf]
    exception_handlers = {SignedOutError: sign_in_first}


def console_dependencies(*services: str) -> dict[str, Provide]:
    """A console controller's ``dependencies``: ``user`` (the signed-in user) and the named services."""
    return {"user": Provide(signed_in_user, sync_to_thread=False), **provide(*services)}


def render(template: str, user: SessionUser, *, active: str = "", status_code: int = 200,
           **context: Any) -> Template:
    """A page for a signed-in user: base.html shows the nav and a sign-out form with the CSRF token."""
    return Template(template, context={"user": user, "csrf_token": user.csrf_token, "active": active, **context},
                    status_code=status_code, headers=NO_STORE)
