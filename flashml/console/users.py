"""Console page for people: GET /users (the users and a create form), POST /users (create one), and per user
POST /users/{name}/unlock (clear an account's failed sign-ins), /disable, /enable, /delete and /password (an
admin's reset). Admins only.

The same UserService as the JSON API (/api/v1/users): it checks names, roles and passwords, keeps the last enabled
admin, ends the sessions of a user disabled, deleted or reset, and audits each change; the page adds the second
password field and shows every refusal in words. SignInService.unlock records "user.unlock".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
                   "is_me": u["name"] == user.name,
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

    async def _act(self, user: SessionUser, users: UserService, sign_ins: SignInService, name: str,
                   act: Callable[[str], Awaitable[str]]) -> Template:
        """Run one action on user ``name``; the page again with what it did, or the refusal in words."""
        try:
            notice = await act(user.principal().actor)
        except FlashMLError as exc:
            return await self._page(user, users, sign_ins, status_code=exc.status, error=exc.message)
        return await self._page(user, users, sign_ins, notice=notice)

    @post("/users/{name:str}/disable", status_code=200, guards=ADMIN)
    async def disable_user(self, user: SignedIn, users: Injected[UserService], sign_ins: Injected[SignInService],
                           name: FromPath[str]) -> Template:
        async def act(actor: str) -> str:
            await users.set_disabled(name, True, actor=actor)
            return f"Disabled {name!r}: they cannot sign in, and their sessions have ended."
        return await self._act(user, users, sign_ins, name, act)

    @post("/users/{name:str}/enable", status_code=200, guards=ADMIN)
    async def enable_user(self, user: SignedIn, users: Injected[UserService], sign_ins: Injected[SignInService],
                          name: FromPath[str]) -> Template:
        async def act(actor: str) -> str:
            await users.set_disabled(name, False, actor=actor)
            return f"Enabled {name!r}: they can sign in again."
        return await self._act(user, users, sign_ins, name, act)

    @post("/users/{name:str}/delete", status_code=200, guards=ADMIN)
    async def delete_user(self, user: SignedIn, users: Injected[UserService], sign_ins: Injected[SignInService],
                          name: FromPath[str]) -> Template:
        async def act(actor: str) -> str:
            await users.delete(name, actor=actor)
            return f"Deleted {name!r}; their sessions have ended. The audit log keeps their name."
        return await self._act(user, users, sign_ins, name, act)

    @post("/users/{name:str}/password", status_code=200, guards=ADMIN)
    async def reset_password(self, request: Request, user: SignedIn, users: Injected[UserService],
                             sign_ins: Injected[SignInService], name: FromPath[str]) -> Template:
        form = await request.form()

        async def act(actor: str) -> str:
            password = form.get("password") or ""
            if password != (form.get("password_again") or ""):
                raise BadRequestError("The two passwords are not the same; type the same password in both fields.",
                                      code="password_mismatch")
            await users.reset_password(name, password, actor=actor)
            return f"Set a new password for {name!r}; their sessions have ended. Tell them the new password."
        return await self._act(user, users, sign_ins, name, act)
