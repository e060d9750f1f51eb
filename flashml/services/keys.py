"""Create, list, revoke and check API keys."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.principal import KEY_ROLES, Principal
from flashml.auth.tokens import hash_token, new_token, parse_token, same_hash
from flashml.db import audit
from flashml.db import keys as db
from flashml.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError

CACHE_TTL_S = 10.0  # a key revoked by the CLI (another process) stops working within this time
FLUSH_EVERY_S = 15.0
_NAME = re.compile(r"^[\w .@:-]{1,128}$")


class KeyService:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[Principal, float]] = {}  # token hash -> (principal, valid until)
        self._last_used: dict[str, float] = {}
        self._flusher: asyncio.Task | None = None

    async def create(self, *, name: str, role: str, models: list[str] | None, actor: str) -> dict[str, Any]:
        """Create a key; the answer holds the secret token, which is never shown again."""
        if role not in KEY_ROLES:
            raise BadRequestError(f"Unknown role {role!r}; use one of: {', '.join(KEY_ROLES)}.", code="bad_role")
        if not _NAME.match(name or ""):
            raise BadRequestError("A key name is 1 to 128 letters, digits, spaces or . @ : - _.", code="bad_name")
        if models is not None:
            models = sorted({m.strip() for m in models if m.strip()}) or None
            if role == "admin" and models:
                raise BadRequestError("An admin key reaches every model; limit only inference keys.",
                                      code="bad_models")
        token, key_id = new_token()
        record = await db.insert_key(self.engine, key_id=key_id, secret_hash=hash_token(token), name=name,
                                     role=role, models=models, created_by=actor)
        await audit.record(self.engine, actor, "key.create", f"key:{record['id']}", {"name": name, "role": role})
        return {**record, "token": token}

    async def list(self) -> list[dict[str, Any]]:
        return await db.list_keys(self.engine)

    async def revoke(self, ident: int, *, actor: str) -> dict[str, Any]:
        record = await db.revoke_key(self.engine, ident)
        if record is None:
            raise NotFoundError(f"There is no API key with id {ident}.", code="key_not_found")
        self._cache = {h: v for h, v in self._cache.items() if v[0].key_pk != ident}
        await audit.record(self.engine, actor, "key.revoke", f"key:{ident}", {"name": record["name"]})
        return record

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer`` header, or 401."""
        if not authorization:
            raise UnauthorizedError("This endpoint needs an API key: send 'Authorization: Bearer <key>'.",
                                    code="missing_key")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("Send the API key as 'Authorization: Bearer <key>'.", code="missing_key")
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            principal = hit[0]
        else:
            principal = await self._lookup(token, digest)
            self._cache[digest] = (principal, now + CACHE_TTL_S)
        self._last_used[principal.key_id] = time.time()
        return principal

    async def _lookup(self, token: str, digest: str) -> Principal:
        key_id = parse_token(token)
        row = await db.get_key_by_key_id(self.engine, key_id) if key_id else None
        if row is None or not same_hash(row["secret_hash"], digest):
            raise UnauthorizedError("The API key is not valid.", code="invalid_key")
        if row["revoked_at"] is not None:
            raise UnauthorizedError("The API key has been revoked.", code="revoked_key")
        models = frozenset(row["models"]) if row["models"] is not None else None
        return Principal(row["id"], row["key_id"], row["name"], row["role"], models, row["created_by"])

    @staticmethod
    def require_admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("This needs an admin key.", code="admin_required")

    async def flush(self) -> None:
        pending, self._last_used = self._last_used, {}
        await db.touch_keys(self.engine, pending)

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def stop(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            with contextlib.suppress(Exception):  # a busy database must not kill the loop; next turn retries
                await self.flush()
