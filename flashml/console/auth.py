"""Console sign-in: GET/POST /login and POST /logout (the signed-in home, /, is the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from flashml.auth.csrf import (
    PRE_SESSION_COOKIE,
    pre_session_token,
    require_csrf,
    require_pre_session_csrf,
    submitted_csrf,
)
from flashml.auth.sign_ins import SESSION_COOKIE, SignInService
from flashml.auth.transport import client_address
from flashml.composition import Services
from flashml.console.cookies import pre_session_cookie, session_cookie
from flashml.errors import FlashMLError


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site (``/models?x=1``), else ``default``: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return default  # browsers read "/\evil.example" as "//evil.example"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def _login_page(request: Request, services: Services, *, name: str = "", next_path: str = "/",
                      error: str | None = None, status: int = 200,
                      headers: dict[str, str] | None = None) -> Template:
    """The sign-in form, carrying the pre-session CSRF token in a field and in its cookie."""
    token = pre_session_token(request)
    no_users = await services.users.needs_setup()  # say where the first account comes from
    return Template("login.html", context={"name": name, "next": next_path, "error": error, "csrf_token": token,
                                           "no_users": no_users},
                    status_code=status, headers=headers,
                    cookies=[pre_session_cookie(request, services.settings, token)])


@dataclass
class LoginForm:
    name: str = ""
    password: str = ""
    next: str = "/"
    csrf_token: str = ""


class AuthController(Controller):
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: Request, services: Services, sessions: SignInService,
                         next: str = "/") -> Template | Redirect:
        target = safe_next(next)
        if await sessions.resolve(request.cookies.get(SESSION_COOKIE)) is not None:
            return Redirect(target)
        return await _login_page(request, services, next_path=target)

    @post("/login", status_code=303)
    async def login(self, request: Request, services: Services, sessions: SignInService,
                    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
        target = safe_next(data.next)
        client_ip = client_address(request, services.settings.trusted_proxies)
        try:
            require_pre_session_csrf(request.cookies.get(PRE_SESSION_COOKIE), data.csrf_token)
            token, _ = await sessions.login(data.name, data.password, client_ip)
        except FlashMLError as exc:
            return await _login_page(request, services, name=data.name, next_path=target, error=exc.message,
                               status=exc.status, headers=exc.headers)
        cookie = session_cookie(request, services.settings, token, int(sessions.lifetime_s))
        return Redirect(target, status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def logout(self, request: Request, services: Services, sessions: SignInService) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        user = await sessions.resolve(token)
        if user is not None:
            require_csrf(user.csrf_token, await submitted_csrf(request))
            await sessions.logout(token)
        return Redirect("/login", status_code=303, cookies=[session_cookie(request, services.settings, "", 0)])
