"""Management API for API keys (maintainers: inference keys; admins: all), the caller's identity, the audit log."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post

from flashml.auth.audit import AuditService
from flashml.auth.keys import KeyService
from flashml.auth.principal import require_may_manage_key
from flashml.auth.records import AuditEvent, Identity, KeyIdentity, KeyRecord, NewKeyRecord, SessionIdentity
from flashml.auth.requests import KeyLimits, NewKey
from flashml.web.bodies import json_body
from flashml.web.deps import Authenticated, Injected, provide
from flashml.web.params import RowId


class KeysController(Controller):
    path = "/api/v1/keys"
    tags = ["API keys"]
    dependencies = provide("keys")

    @post("/", summary="Create an API key (the secret is in this answer only)", status_code=201,
          dependencies=json_body(NewKey))
    async def create_key(self, payload: Injected[NewKey], maintainer: Authenticated,
                         keys: Injected[KeyService]) -> NewKeyRecord:
        require_may_manage_key(maintainer, payload.role)
        return await keys.create(name=payload.name, role=payload.role, models=payload.models, actor=maintainer.actor,
                                 rate_limit_per_s=payload.rate_limit_per_s, burst=payload.burst,
                                 daily_quota=payload.daily_quota, weight=payload.weight)

    @get("/", summary="List API keys")
    async def list_keys(self, maintainer: Authenticated, keys: Injected[KeyService]) -> list[KeyRecord]:
        every = await keys.list()
        return every if maintainer.is_admin else [k for k in every if k.role == "inference"]

    @get("/{key_id:int}", summary="One API key, with its limits and today's use")
    async def get_key(self, key_id: RowId, maintainer: Authenticated, keys: Injected[KeyService]) -> KeyRecord:
        key = await keys.get(key_id)
        require_may_manage_key(maintainer, key.role)
        return key

    @patch("/{key_id:int}", summary="Change an API key's rate limit, burst, daily quota or weight",
           dependencies=json_body(KeyLimits))
    async def set_limits(self, key_id: RowId, payload: Injected[KeyLimits], maintainer: Authenticated,
                         keys: Injected[KeyService]) -> KeyRecord:
        require_may_manage_key(maintainer, (await keys.get(key_id)).role)
        return await keys.set_limits(key_id, actor=maintainer.actor, **payload.changes())

    @delete("/{key_id:int}", summary="Revoke an API key (it stops working at once)", status_code=200)
    async def revoke_key(self, key_id: RowId, maintainer: Authenticated, keys: Injected[KeyService]) -> KeyRecord:
        require_may_manage_key(maintainer, (await keys.get(key_id)).role)
        return await keys.revoke(key_id, actor=maintainer.actor)


class MeController(Controller):
    path = "/api/v1"
    tags = ["Identity"]
    dependencies = provide("audit")

    @get("/me", summary="Who this API key (or console session) is")
    async def me(self, caller: Authenticated) -> Identity:
        if caller.is_session:  # the page's scripts read the CSRF token here (same origin only)
            return Identity(user=SessionIdentity(name=caller.name, role=caller.role),
                            csrf_token=caller.csrf_token or "")
        return Identity(key=msgspec.convert(caller.to_dict(), KeyIdentity))

    @get("/audit", summary="The audit log, newest first (viewers and maintainers: model events only)")
    async def audit_log(self, viewer: Authenticated, audit: Injected[AuditService],
                        limit: int = 100) -> list[AuditEvent]:
        return await audit.events(viewer, limit)
