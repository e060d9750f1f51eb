"""Console page for the signed-in user's own password: GET /account/password (the form), POST /account/password.

The same UserService.change_password as ``POST /api/v1/account/password``: the current password is checked by the
sign-in brake (a wrong one counts as a failed sign-in; 429 once the address is held back), the new one by the
password rules. The user's other sessions end; this one stays, so the person goes on where they were.
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.response import Template

from flashml.auth.sign_ins import SessionUser
from flashml.auth.transport import client_address
from flashml.auth.users import UserService
from flashml.console.guards import SignedIn
from flashml.console.pages import ConsoleController, console_dependencies, render
from flashml.errors import BadRequestError, FlashMLError
from flashml.settings import Settings
from flashml.web.deps import Injected


def _page(user: SessionUser, *, status_code: int = 200, error: str | None = None,
          notice: str | None = None) -> Template:
    return render("account_password.html", user, active="account", status_code=status_code, error=error,
                  notice=notice)


class AccountPageController(ConsoleController):
    dependencies = console_dependencies("users", "settings")

    @get("/account/password")
    async def password_page(self, user: SignedIn) -> Template:
        return _page(user)

    @post("/account/password", status_code=200)
    async def change_password(self, request: Request, user: SignedIn, users: Injected[UserService],
                              settings: Injected[Settings]) -> Template:
        form = await request.form()
        new_password = form.get("new_password") or ""
        try:
            if new_password != (form.get("new_password_again") or ""):
                raise BadRequestError("The two new passwords are not the same; type the same password in both "
                                      "fields.", code="password_mismatch")
            await users.change_password(user.name, form.get("current_password") or "", new_password,
                                        client_ip=client_address(request, settings.trusted_proxies),
                                        keep_session=user.session_id)
        except FlashMLError as exc:
            message = "The current password is wrong." if exc.code == "login_failed" else exc.message
            page = _page(user, status_code=exc.status, error=message)
            page.headers.update(exc.headers or {})  # Retry-After, when the brake holds the address back
            return page
        return _page(user, notice="Your password is changed. Your other sessions have ended; this one goes on.")
