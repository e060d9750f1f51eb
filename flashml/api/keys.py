"""Management API for API keys, the caller's identity and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from litestar import Controller, delete, get, post

from flashml.api.models import _actor
from flashml.auth.principal import Principal
from flashml.db import audit
from flashml.services.container import Services


@dataclass
class NewKey:
    name: str
    role: Literal["admin", "inference"] = "inference"
    models: list[str] | None = None


class KeysController(Controller):
    path = "/api/v1/keys"
    tags = ["API keys"]

    @post("/", summary="Create an API key (the secret is in this answer only)", status_code=201)
    async def create_key(self, data: NewKey, admin: Principal, services: Services) -> dict[str, Any]:
        return await services.keys.create(name=data.name, role=data.role, models=data.models, actor=_actor(admin))

    @get("/", summary="List API keys")
    async def list_keys(self, admin: Principal, services: Services) -> list[dict[str, Any]]:
        return await services.keys.list()

    @delete("/{key_id:int}", summary="Revoke an API key (it stops working at once)", status_code=200)
    async def revoke_key(self, key_id: int, admin: Principal, services: Services) -> dict[str, Any]:
        return await services.keys.revoke(key_id, actor=_actor(admin))


class MeController(Controller):
    path = "/api/v1"
    tags = ["Identity"]

    @get("/me", summary="Who this API key is")
    async def me(self, principal: Principal) -> dict[str, Any]:
        return {"key": principal.to_dict()}

    @get("/audit", summary="The audit log, newest first")
    async def audit_log(self, admin: Principal, services: Services, limit: int = 100) -> list[dict[str, Any]]:
        return await audit.list_events(services.engine, min(max(limit, 1), 1000))
