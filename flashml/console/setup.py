"""The first-run page: create the first admin from the one-time link printed at start-up.

It comes before any session, so its form carries the signed pre-session token (``SignInService.pre_session``),
as the sign-in form does, instead of a session's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Template

from flashml.auth.csrf import PRE_SESSION_COOKIE
from flashml.auth.keys import KeyService
from flashml.auth.sign_ins import SignInService
from flashml.auth.transport import client_address
from flashml.auth.users import UserService
from flashml.console.cookies import pre_session_cookie, session_cookie
from flashml.errors import FlashMLError
from flashml.settings import Settings
from flashml.web.deps import Injected, provide


@dataclass
class SetupForm:
    token: str
    name: str
    password: str
    password_again: str
    csrf_token: str = ""


def _setup_page(request: Request, sign_ins: SignInService, settings: Settings, context: dict,
                status: int) -> Template:
    """The setup form, carrying the pre-session CSRF token in a field and in its cookie."""
    token = sign_ins.pre_session.token_for(request)
    return Template("setup.html", context={**context, "csrf_token": token}, status_code=status,
                    cookies=[pre_session_cookie(request, settings, token)])


class SetupController(Controller):
    path = "/setup"
    include_in_schema = False
    dependencies = provide("users", "keys", "sign_ins", "settings")

    @get("/")
    async def setup_page(self, request: Request, users: Injected[UserService], sign_ins: Injected[SignInService],
                         settings: Injected[Settings], token: FromQuery[str] = "") -> Template:
        valid = await users.setup_token_valid(token)
        return _setup_page(request, sign_ins, settings,
                           {"token": token, "valid": valid, "error": None, "name": ""}, 200 if valid else 403)

    @post("/", status_code=200)
    async def complete_setup(
        self, request: Request, users: Injected[UserService], keys: Injected[KeyService],
        sign_ins: Injected[SignInService], settings: Injected[Settings],
        data: Annotated[SetupForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        ctx = {"token": data.token, "valid": True, "name": data.name}
        try:
            sign_ins.pre_session.require(request.cookies.get(PRE_SESSION_COOKIE), data.csrf_token)
        except FlashMLError as exc:
            return _setup_page(request, sign_ins, settings, {**ctx, "error": exc.message}, exc.status)
        if data.password != data.password_again:
            return _setup_page(request, sign_ins, settings, {**ctx, "error": "The two passwords differ."}, 400)
        try:
            user = await users.complete_setup(data.token, data.name, data.password)
        except FlashMLError as exc:
            valid = exc.code != "setup_link_invalid"
            return _setup_page(request, sign_ins, settings, {**ctx, "valid": valid, "error": exc.message},
                               exc.status)
        key = await keys.create(name=f"{user['name']} admin key", role="admin", models=None, actor=user["name"])
        context = {"admin_name": user["name"], "key": key, "base_url": settings.base_url}
        # Signed in at once: the new admin goes on to the console without typing the password again. The key
        # must be shown whatever happens, so a failed sign-in only leaves the page signed out.
        try:
            token, session = await sign_ins.login(data.name, data.password,
                                                  client_address(request, settings.trusted_proxies))
        except FlashMLError:
            return Template("setup_done.html", context=context)
        cookie = session_cookie(request, settings, token, int(sign_ins.lifetime_s))
        return Template("setup_done.html", cookies=[cookie],
                        context={**context, "user": session, "csrf_token": session.csrf_token})
