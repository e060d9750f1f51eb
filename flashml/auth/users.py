"""People: the first admin (setup link or CLI) and later users."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.passwords import hash_password_async, password_problem
from flashml.auth.records import UserRecord
from flashml.auth.sign_ins import SignInService
from flashml.auth.tokens import hash_token
from flashml.db import audit
from flashml.db import users as db
from flashml.errors import BadRequestError, ConflictError, ForbiddenError, UserNotFoundError

USER_ROLES = ("admin", "maintainer", "viewer")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def _check(name: str, password: str) -> None:
    if not _NAME.match(name or ""):
        raise BadRequestError("A user name is 1 to 64 letters, digits or . _ @ -, starting with a letter or digit.",
                              code="bad_name")
    _check_password(password)


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise BadRequestError(problem, code="weak_password")


def _check_role(role: str) -> None:
    if role not in USER_ROLES:
        raise BadRequestError(f"Unknown role {role!r}; use one of: {', '.join(USER_ROLES)}.", code="bad_role")


def _last_admin(name: str, doing: str) -> ConflictError:
    return ConflictError(f"{name!r} is the only enabled admin: {doing} would leave nobody to manage users. Make "
                         "another user an admin first.", code="last_admin", details={"user": name})


def user_record(user: dict[str, Any]) -> UserRecord:
    """The API's record of a user (never the password hash)."""
    return UserRecord(name=user["name"], role=user["role"], created_at=user["created_at"],
                      disabled=bool(user["disabled"]), locked=bool(user.get("locked")))


class UserService:
    """People and what admins do to them. Every change is audited with its actor; disabling, deleting and a
    password reset end the user's console sessions at once (``SignInService.end_sessions``)."""

    def __init__(self, engine: AsyncEngine, sign_ins: SignInService | None = None) -> None:
        self.engine = engine
        # The sign-in brake and the session cache live there; the CLI's own copy knows no failed sign-ins.
        self.sign_ins = sign_ins or SignInService(engine)

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A user row without its password hash, with ``locked`` as this process's brake sees it."""
        # Plain str keys: the database's are SQLAlchemy's quoted_name, which msgspec does not take as str.
        user = {str(k): v for k, v in row.items() if k != "password_hash"}
        user["disabled"] = bool(user["disabled"])
        user["locked"] = self.sign_ins.locked(user["name"], user.get("unlocked_at"))
        return user

    async def create(self, name: str, password: str, *, role: str, actor: str) -> dict[str, Any]:
        _check_role(role)
        _check(name, password)
        pw_hash = await hash_password_async(password)
        user = await db.insert_user(self.engine, name, pw_hash, role)
        if user is None:
            raise ConflictError(f"A user named {name!r} already exists.", code="user_exists")
        await audit.record(self.engine, actor, "user.create", f"user:{name}", {"role": role})
        return await self.get(name)

    async def list_users(self) -> list[dict[str, Any]]:
        return [self._view(u) for u in await db.list_users(self.engine)]

    async def get(self, name: str) -> dict[str, Any]:
        """User ``name``, else 404 ``user_not_found``."""
        row = await db.get_user(self.engine, name)
        if row is None:
            raise UserNotFoundError(name)
        return self._view(row)

    async def _update(self, name: str, values: dict[str, Any], doing: str) -> dict[str, Any]:
        row = await db.update_user(self.engine, name, values)
        if row == db.MISSING:
            raise UserNotFoundError(name)
        if row == db.LAST_ADMIN:
            raise _last_admin(name, doing)
        assert isinstance(row, dict)
        return self._view(row)

    async def set_disabled(self, name: str, disabled: bool, *, actor: str) -> dict[str, Any]:
        """Disable (their sessions end at once; 409 ``last_admin`` for the only enabled admin) or enable."""
        before = await self.get(name)
        user = await self._update(name, {"disabled": int(disabled)}, "disabling them")
        if disabled:
            ended = await self.sign_ins.end_sessions(name)
            if not before["disabled"]:
                await audit.record(self.engine, actor, "user.disable", f"user:{name}", {"sessions_ended": ended})
        elif before["disabled"]:
            await audit.record(self.engine, actor, "user.enable", f"user:{name}")
        return user

    async def set_role(self, name: str, role: str, *, actor: str) -> dict[str, Any]:
        """Give user ``name`` another role (409 ``last_admin`` when the only enabled admin would lose it)."""
        _check_role(role)
        before = await self.get(name)
        user = await self._update(name, {"role": role}, f"making them {role}")
        await self.sign_ins.user_changed(name)  # their open sessions get the new role with their next request
        if before["role"] != role:
            await audit.record(self.engine, actor, "user.role", f"user:{name}", {"from": before["role"], "to": role})
        return user

    async def update(self, name: str, *, actor: str, disabled: bool | None = None,
                     role: str | None = None) -> dict[str, Any]:
        """Both changes of ``PATCH /api/v1/users/{name}``, the role first (each audited as itself)."""
        if disabled is None and role is None:
            raise BadRequestError("Give at least one of: disabled, role.", code="nothing_to_change")
        # The role first: an admin demoted and disabled in one go is checked as the admin they are now.
        user = await self.set_role(name, role, actor=actor) if role is not None else None
        if disabled is not None:
            user = await self.set_disabled(name, disabled, actor=actor)
        assert user is not None
        return user

    async def delete(self, name: str, *, actor: str) -> None:
        """Delete user ``name`` and end their sessions (409 ``last_admin`` for the only enabled admin). The audit
        log keeps their name."""
        refused = await db.delete_user(self.engine, name)
        if refused == db.MISSING:
            raise UserNotFoundError(name)
        if refused == db.LAST_ADMIN:
            raise _last_admin(name, "deleting them")
        await self.sign_ins.user_changed(name)
        await audit.record(self.engine, actor, "user.delete", f"user:{name}")

    async def reset_password(self, name: str, password: str, *, actor: str) -> dict[str, Any]:
        """An admin sets user ``name``'s password; their sessions end (whoever held the old one is out)."""
        _check_password(password)
        await self.get(name)
        user = await self._update(name, {"password_hash": await hash_password_async(password)}, "")
        ended = await self.sign_ins.end_sessions(name)
        await audit.record(self.engine, actor, "user.password_reset", f"user:{name}", {"sessions_ended": ended})
        return user

    async def change_password(self, name: str, current_password: str, new_password: str, *, client_ip: str = "",
                              keep_session: str | None = None) -> None:
        """A person changes their own password, proven by the current one: a wrong one is a failed sign-in for
        the brake (401 ``login_failed``, then 429 ``login_rate_limited``, as at the sign-in form). Their other
        sessions end; ``keep_session`` (the console session that asked) stays."""
        _check_password(new_password)
        await self.sign_ins.check_password(name, current_password, client_ip,
                                           failed_action="user.password_change_failed")
        await self._update(name, {"password_hash": await hash_password_async(new_password)}, "")
        ended = await self.sign_ins.end_sessions(name, keep=keep_session)
        await audit.record(self.engine, name, "user.password_change", f"user:{name}",
                           {"ip": client_ip, "sessions_ended": ended})

    async def needs_setup(self) -> bool:
        return await db.count_users(self.engine) == 0

    async def issue_setup_token(self, ttl_s: float) -> str:
        """A new one-time setup token (only its hash is stored); earlier ones stop working."""
        token = secrets.token_urlsafe(32)
        await db.replace_setup_token(self.engine, hash_token(token), ttl_s)
        return token

    async def setup_token_valid(self, token: str) -> bool:
        return bool(token) and await db.setup_token_valid(self.engine, hash_token(token))

    async def complete_setup(self, token: str, name: str, password: str) -> dict[str, Any]:
        """Create the first admin with the one-time token; the token is spent either way it succeeds."""
        _check(name, password)
        pw_hash = await hash_password_async(password)
        user = await db.consume_setup_token(self.engine, hash_token(token or ""), name, pw_hash)
        if user is None:
            raise ForbiddenError("This setup link is not valid: it was used already, has expired, or an admin "
                                 "exists. Restart the server with no users for a new link, or run "
                                 "'flashml users create NAME --admin'.", code="setup_link_invalid")
        await audit.record(self.engine, name, "user.setup", f"user:{name}", {"role": "admin"})
        return user
