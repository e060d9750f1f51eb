"""Management API for people (admins only): list, create, disable or enable, change the role, delete, reset a
password, unlock; and ``POST /api/v1/account/password``, where a person changes their own password with the
current one (no API key: the password is the proof, and the sign-in brake counts each wrong one).

The same UserService as the console's Users page and the CLI; every change is audited with the caller as actor.
"""

from __future__ import annotations

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath

from flashml.auth.records import UserRecord
from flashml.auth.requests import NewUser, PasswordChange, PasswordReset, UserChanges
from flashml.auth.sign_ins import SignInService
from flashml.auth.transport import client_address
from flashml.auth.users import UserService, user_record
from flashml.settings import Settings
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["Users"]
    dependencies = provide("users", "sign_ins")

    @get("/", summary="List the console users")
    async def list_users(self, admin: Authenticated, users: Injected[UserService]) -> list[UserRecord]:
        return [user_record(u) for u in await users.list_users()]

    @post("/", summary="Create a console user", status_code=201, dependencies=json_body(NewUser))
    async def create_user(self, payload: Injected[NewUser], admin: Authenticated,
                          users: Injected[UserService]) -> UserRecord:
        return user_record(await users.create(payload.name, payload.password, role=payload.role,
                                              actor=admin.actor))

    @get("/{name:str}", summary="One console user")
    async def get_user(self, name: FromPath[str], admin: Authenticated, users: Injected[UserService]) -> UserRecord:
        return user_record(await users.get(name))

    @patch("/{name:str}", summary="Disable or enable a user (disabling ends their sessions), or change their role",
           dependencies=json_body(UserChanges))
    async def update_user(self, name: FromPath[str], payload: Injected[UserChanges], admin: Authenticated,
                          users: Injected[UserService]) -> UserRecord:
        changes = payload.to_dict()
        return user_record(await users.update(name, actor=admin.actor, disabled=changes.get("disabled"),
                                              role=changes.get("role")))

    @delete("/{name:str}", summary="Delete a user (their sessions end; the audit log keeps the name)",
            status_code=204)
    async def delete_user(self, name: FromPath[str], admin: Authenticated, users: Injected[UserService]) -> None:
        await users.delete(name, actor=admin.actor)

    @post("/{name:str}/password", summary="Set a user's password (an admin's reset; their sessions end)",
          status_code=200, dependencies=json_body(PasswordReset))
    async def reset_password(self, name: FromPath[str], payload: Injected[PasswordReset], admin: Authenticated,
                             users: Injected[UserService]) -> UserRecord:
        return user_record(await users.reset_password(name, payload.password, actor=admin.actor))

    @post("/{name:str}/unlock", summary="Clear a user's failed sign-ins", status_code=200)
    async def unlock_user(self, name: FromPath[str], admin: Authenticated, users: Injected[UserService],
                          sign_ins: Injected[SignInService]) -> UserRecord:
        await sign_ins.unlock(name, actor=admin.actor)
        return user_record(await users.get(name))


class AccountController(Controller):
    path = "/api/v1/account"
    tags = ["Users"]
    dependencies = provide("users", "settings")

    @post("/password", summary="Change your own password with the current one (no API key needed; wrong passwords "
                               "count as failed sign-ins; your sessions end)",
          status_code=204, dependencies=json_body(PasswordChange))
    async def change_password(self, request: Request, payload: Injected[PasswordChange],
                              users: Injected[UserService], settings: Injected[Settings]) -> None:
        await users.change_password(payload.name, payload.current_password, payload.new_password,
                                    client_ip=client_address(request, settings.trusted_proxies))
