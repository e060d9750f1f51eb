"""Console sign-in: GET/POST /login and POST /logout (the signed-in home, /, is the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from flashml.auth.csrf import require_csrf, submitted_csrf
from flashml.errors import FlashMLError
from flashml.services.sessions import SESSION_COOKIE, SessionService


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


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _session_cookie(value: str, *, secure: bool, max_age: int | None) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value=value, path="/", httponly=True, samesite="strict", secure=secure,
                  max_age=max_age)


def _login_page(*, name: str = "", next_path: str = "/", error: str | None = None, status: int = 200,
                headers: dict[str, str] | None = None) -> Template:
    return Template("login.html", context={"name": name, "next": next_path, "error": error},
                    status_code=status, headers=headers)


@dataclass
class LoginForm:
    name: str = ""
    password: str = ""
    next: str = "/"


class AuthController(Controller):
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: Request, sessions: SessionService, next: str = "/") -> Template | Redirect:
        target = safe_next(next)
        if await sessions.resolve(request.cookies.get(SESSION_COOKIE)) is not None:
            return Redirect(target)
        return _login_page(next_path=target)

    @post("/login", status_code=303)
    async def login(self, request: Request, sessions: SessionService,
                    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
        target = safe_next(data.next)
        client_ip = request.client.host if request.client else ""
        try:
            token, _ = await sessions.login(data.name, data.password, client_ip)
        except FlashMLError as exc:
            return _login_page(name=data.name, next_path=target, error=exc.message, status=exc.status,
                               headers=exc.headers)
        cookie = _session_cookie(token, secure=_is_https(request), max_age=int(sessions.lifetime_s))
        return Redirect(target, status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def logout(self, request: Request, sessions: SessionService) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        user = await sessions.resolve(token)
        if user is not None:
            require_csrf(user.csrf_token, await submitted_csrf(request))
            await sessions.logout(token)
        gone = _session_cookie("", secure=_is_https(request), max_age=0)
        return Redirect("/login", status_code=303, cookies=[gone])

