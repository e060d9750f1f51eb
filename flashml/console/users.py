"""Console page for people: GET /users (the users and a create form), POST /users (create one), POST
/users/{name}/unlock (clear an account's failed sign-ins). Admins only.

UserService does the checks (name, role, password length) and records "user.create" in the audit log; the page
adds the second password field and shows every refusal in words. SignInService.unlock records "user.unlock".
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from flashml.auth.principal import USER_ROLES
from flashml.auth.sign_ins import SessionUser, SignInService
from flashml.auth.users import UserService
from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import ConsoleController, console_dependencies, render
from flashml.errors import BadRequestError, FlashMLError
from flashml.web.deps import Injected

ADMIN = [needs_role("admin")]  # every handler here


class UsersPageController(ConsoleController):
    dependencies = console_dependencies("users", "sign_ins")

    async def _page(self, user: SessionUser, users: UserService, sign_ins: SignInService, *, status_code: int = 200,
                    error: str | None = None, notice: str | None = None,
                    values: dict[str, Any] | None = None) -> Template:
        brake = sign_ins.brake
        people = [{**u, "refused": brake.refused_sources(u["name"], u.get("unlocked_at") or 0.0),
                   "failures": brake.failures(u["name"])}
                  for u in await users.list_users()]
        return render("users.html", user, active="users", status_code=status_code, users=people, roles=USER_ROLES,
                      error=error, notice=notice, values=values or {})

    @get("/users", guards=ADMIN)
    async def users_page(self, user: SignedIn, users: Injected[UserService],
                         sign_ins: Injected[SignInService]) -> Template:
        return await self._page(user, users, sign_ins)

    @post("/users", status_code=200, guards=ADMIN)
    async def create_user(self, request: Request, user: SignedIn, users: Injected[UserService],
                          sign_ins: Injected[SignInService]) -> Template:
        form = await request.form()
        values = {k: (form.get(k) or "") for k in ("name", "role")}
        try:
            password = form.get("password") or ""
            if password != (form.get("password_again") or ""):
                raise BadRequestError("The two passwords are not the same; type the same password in both fields.",
                                      code="password_mismatch")
            created = await users.create(values["name"].strip(), password, role=values["role"] or "viewer",
                                         actor=user.principal().actor)
        except FlashMLError as exc:
            return await self._page(user, users, sign_ins, status_code=exc.status, error=exc.message, values=values)
        return await self._page(user, users, sign_ins,
                                notice=f"Created the user {created['name']!r} with the {created['role']} role.")

    @post("/users/{name:str}/unlock", status_code=200, guards=ADMIN)
    async def unlock_user(self, user: SignedIn, users: Injected[UserService], sign_ins: Injected[SignInService],
                          name: FromPath[str]) -> Template:
        try:
            held = await sign_ins.unlock(name, actor=user.principal().actor)
        except FlashMLError as exc:
            return await self._page(user, users, sign_ins, status_code=exc.status, error=exc.message)
        refused = f"; {held} address{'es' if held != 1 else ''} may try again" if held else ""
        return await self._page(user, users, sign_ins,
                                notice=f"Unlocked {name!r}: its failed sign-ins are cleared{refused}.")
