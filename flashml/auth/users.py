"""People: the first admin (setup link or CLI) and later users."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.passwords import hash_password_async, password_problem
from flashml.auth.tokens import hash_token
from flashml.db import audit
from flashml.db import users as db
from flashml.errors import BadRequestError, ConflictError, ForbiddenError

USER_ROLES = ("admin", "maintainer", "viewer")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def _check(name: str, password: str) -> None:
    if not _NAME.match(name or ""):
        raise BadRequestError("A user name is 1 to 64 letters, digits or . _ @ -, starting with a letter or digit.",
                              code="bad_name")
    problem = password_problem(password)
    if problem:
        raise BadRequestError(problem, code="weak_password")


class UserService:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, name: str, password: str, *, role: str, actor: str) -> dict[str, Any]:
        if role not in USER_ROLES:
            raise BadRequestError(f"Unknown role {role!r}; use one of: {', '.join(USER_ROLES)}.", code="bad_role")
        _check(name, password)
        pw_hash = await hash_password_async(password)
        user = await db.insert_user(self.engine, name, pw_hash, role)
        if user is None:
            raise ConflictError(f"A user named {name!r} already exists.", code="user_exists")
        await audit.record(self.engine, actor, "user.create", f"user:{name}", {"role": role})
        return user

    async def list_users(self) -> list[dict[str, Any]]:
        return await db.list_users(self.engine)

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
