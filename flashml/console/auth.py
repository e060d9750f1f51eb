"""Console sign-in: GET/POST /login and POST /logout (the signed-in home, /, is the dashboard).

The sign-in form exists before any session: it carries its own signed token (``SignInService.pre_session``, one
key for every node, so a form rendered by one node can be posted to another).
Signing out is a change made with the session, so the ``session_csrf`` guard checks the session's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from flashml.auth.csrf import PRE_SESSION_COOKIE
from flashml.auth.sign_ins import SESSION_COOKIE, SignInService
from flashml.auth.transport import client_address
from flashml.auth.users import UserService
from flashml.console.cookies import pre_session_cookie, session_cookie
from flashml.console.guards import session_csrf
from flashml.errors import FlashMLError
from flashml.settings import Settings
from flashml.web.deps import Injected, provide


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


async def _login_page(request: Request, users: UserService, sign_ins: SignInService, settings: Settings, *,
                      name: str = "", next_path: str = "/", error: str | None = None, status: int = 200,
                      headers: dict[str, str] | None = None) -> Template:
    """The sign-in form, carrying the pre-session CSRF token in a field and in its cookie."""
    token = sign_ins.pre_session.token_for(request)
    no_users = await users.needs_setup()  # say where the first account comes from
    return Template("login.html", context={"name": name, "next": next_path, "error": error, "csrf_token": token,
                                           "no_users": no_users},
                    status_code=status, headers=headers, cookies=[pre_session_cookie(request, settings, token)])


@dataclass
class LoginForm:
    name: str = ""
    password: str = ""
    next: str = "/"
    csrf_token: str = ""


class AuthController(Controller):
    include_in_schema = False
    dependencies = provide("users", "settings", "sign_ins")

    @get("/login")
    async def login_page(self, request: Request, users: Injected[UserService], settings: Injected[Settings],
                         sign_ins: Injected[SignInService], next: FromQuery[str] = "/") -> Template | Redirect:
        target = safe_next(next)
        if await sign_ins.resolve(request.cookies.get(SESSION_COOKIE)) is not None:
            return Redirect(target)
        return await _login_page(request, users, sign_ins, settings, next_path=target)

    @post("/login", status_code=303)
    async def login(self, request: Request, users: Injected[UserService], settings: Injected[Settings],
                    sign_ins: Injected[SignInService],
                    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
        target = safe_next(data.next)
        client_ip = client_address(request, settings.trusted_proxies)
        try:
            sign_ins.pre_session.require(request.cookies.get(PRE_SESSION_COOKIE), data.csrf_token)
            token, _ = await sign_ins.login(data.name, data.password, client_ip)
        except FlashMLError as exc:
            return await _login_page(request, users, sign_ins, settings, name=data.name, next_path=target,
                                     error=exc.message, status=exc.status, headers=exc.headers)
        cookie = session_cookie(request, settings, token, int(sign_ins.lifetime_s))
        return Redirect(target, status_code=303, cookies=[cookie])

    @post("/logout", status_code=303, guards=[session_csrf])
    async def logout(self, request: Request, settings: Injected[Settings],
                     sign_ins: Injected[SignInService]) -> Response:
        """Ends the session (its CSRF token checked by the guard); signed out already, only clears the cookie."""
        token = request.cookies.get(SESSION_COOKIE)
        if await sign_ins.resolve(token) is not None:
            await sign_ins.logout(token)
        return Redirect("/login", status_code=303, cookies=[session_cookie(request, settings, "", 0)])
