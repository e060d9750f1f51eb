"""What every console page shares: the signed-in user, the sign-in redirect, and rendering with the nav."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Redirect, Template

from flashml.auth.sign_ins import SESSION_COOKIE, SessionUser, SignInService


async def current_user(request: Request, sessions: SignInService) -> SessionUser | None:
    return await sessions.resolve(request.cookies.get(SESSION_COOKIE))


def to_login(request: Request) -> Redirect:
    """Back to this page after signing in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(here, safe='')}")


def render(template: str, user: SessionUser, *, active: str = "", status_code: int = 200,
           **context: Any) -> Template:
    """A page for a signed-in user: base.html shows the nav and a sign-out form with the CSRF token."""
    return Template(template, context={"user": user, "csrf_token": user.csrf_token, "active": active, **context},
                    status_code=status_code, headers={"Cache-Control": "no-store"})
