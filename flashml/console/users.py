"""Console page for people: GET /users (the users and a create form), POST /users (create one), POST
/users/{name}/unlock (clear an account's failed sign-ins). Admins only.

UserService does the checks (name, role, password length) and records "user.create" in the audit log; the page
adds the second password field and shows every refusal in words. SignInService.unlock records "user.unlock".
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from flashml.auth.csrf import require_csrf, submitted_csrf
from flashml.auth.principal import USER_ROLES, require_role
from flashml.auth.sign_ins import SessionUser, SignInService
from flashml.composition import Services
from flashml.console.pages import current_user, render, to_login
from flashml.errors import BadRequestError, FlashMLError


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else ""


def _forbidden(user: SessionUser) -> str:
    return (f"Managing users needs the admin role; you have the {user.role} role. Ask an admin if you need a "
            "new user.")


class UsersPageController(Controller):
    include_in_schema = False

    async def _page(self, user: SessionUser, services: Services, *, status_code: int = 200,
                    error: str | None = None, notice: str | None = None,
                    values: dict[str, Any] | None = None) -> Template:
        brake = services.sign_ins.brake
        people = [{**u, "created_text": _when(u.get("created_at")),
                   "refused": brake.refused_sources(u["name"], u.get("unlocked_at") or 0.0),
                   "failures": brake.failures(u["name"])}
                  for u in await services.users.list_users()]
        return render("users.html", user, active="users", status_code=status_code, allowed=True, users=people,
                      roles=USER_ROLES, error=error, notice=notice, values=values or {})

    @get("/users")
    async def users_page(self, request: Request, sessions: SignInService, services: Services) -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        if not user.principal().is_admin:
            return render("users.html", user, active="users", status_code=403, allowed=False,
                          error=_forbidden(user))
        return await self._page(user, services)

    @post("/users", status_code=200)
    async def create_user(self, request: Request, sessions: SignInService, services: Services) -> Response:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect("/login?next=%2Fusers", status_code=303)
        form = await request.form()
        values = {k: (form.get(k) or "") for k in ("name", "role")}
        try:
            require_csrf(user.csrf_token, await submitted_csrf(request))
            principal = user.principal()
            require_role(principal, "admin")
            password = form.get("password") or ""
            if password != (form.get("password_again") or ""):
                raise BadRequestError("The two passwords are not the same; type the same password in both fields.",
                                      code="password_mismatch")
            created = await services.users.create(values["name"].strip(), password, role=values["role"] or "viewer",
                                                  actor=principal.actor)
        except FlashMLError as exc:
            if not user.principal().is_admin:
                return render("users.html", user, active="users", status_code=exc.status, allowed=False,
                              error=exc.message)
            return await self._page(user, services, status_code=exc.status, error=exc.message, values=values)
        return await self._page(user, services,
                                notice=f"Created the user {created['name']!r} with the {created['role']} role.")

    @post("/users/{name:str}/unlock", status_code=200)
    async def unlock_user(self, request: Request, name: str, sessions: SignInService, services: Services) -> Response:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect("/login?next=%2Fusers", status_code=303)
        try:
            require_csrf(user.csrf_token, await submitted_csrf(request))
            principal = user.principal()
            require_role(principal, "admin")
            held = await sessions.unlock(name, actor=principal.actor)
        except FlashMLError as exc:
            if not user.principal().is_admin:
                return render("users.html", user, active="users", status_code=exc.status, allowed=False,
                              error=exc.message)
            return await self._page(user, services, status_code=exc.status, error=exc.message)
        refused = f"; {held} address{'es' if held != 1 else ''} may try again" if held else ""
        return await self._page(user, services, notice=f"Unlocked {name!r}: its failed sign-ins are cleared{refused}.")
