"""Console page for API keys: GET /keys (list and create form), POST /keys (create; the secret is shown once),
POST /keys/{id}/revoke and POST /keys/{id}/limits.

The same KeyService and role rules as the JSON API: maintainers manage inference keys, admins keys of any role,
viewers only read (a role guard lets maintainers and admins change; the key's own role is checked with the key).
Every form works as a plain POST; with htmx, revoke and limits swap just the key's row.
"""

from __future__ import annotations

import math
from typing import Any

from litestar import get, post
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template

from flashml.auth.keys import LIMIT_FIELDS, KeyService
from flashml.auth.principal import KEY_ROLES, Principal, require_may_manage_key
from flashml.auth.records import KeyRecord
from flashml.auth.sign_ins import SessionUser
from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import NO_STORE, ConsoleController, console_dependencies, render
from flashml.errors import BadRequestError, FlashMLError
from flashml.web.deps import Injected
from flashml.web.params import RowId

LIMIT_LABELS = {"rate_limit_per_s": "Rate limit (requests per second)", "burst": "Burst",
                "daily_quota": "Daily quota (requests per UTC day)", "weight": "Weight (1 to 100)"}
MANAGE = [needs_role("maintainer")]  # the least role that manages any key


def creatable_roles(principal: Principal) -> list[str]:
    """The key roles this caller may create: admins any, maintainers inference keys, others none."""
    if principal.is_admin:
        return list(KEY_ROLES)
    return ["inference"] if principal.has_role("maintainer") else []


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def key_view(record: KeyRecord, principal: Principal) -> dict[str, Any]:
    """What a row of the table shows."""
    key = record.to_dict()
    limits = []
    if key.get("rate_limit_per_s") is not None:
        limits.append(f"{_number(key['rate_limit_per_s'])}/s")
    if key.get("burst") is not None:
        limits.append(f"burst {key['burst']}")
    if key.get("daily_quota") is not None:
        limits.append(f"{key.get('used_today', 0)} of {key['daily_quota']} today")
    if (key.get("weight") or 1) != 1:
        limits.append(f"weight {key['weight']}")
    revoked = key.get("revoked_at") is not None
    return {
        **key,
        "models_text": ", ".join(key["models"]) if key.get("models") else "all",
        "limits_text": ", ".join(limits) or "none",
        "form": {f: "" if key.get(f) is None else _number(key[f]) for f in LIMIT_FIELDS},
        "manageable": not revoked and principal.has_role("maintainer" if key["role"] == "inference" else "admin"),
    }


def _visible(keys: list[KeyRecord], principal: Principal) -> list[KeyRecord]:
    """Admins see every key; everyone else the inference keys (as the API lists them to maintainers)."""
    return keys if principal.is_admin else [k for k in keys if k.role == "inference"]


def _parse_number(form: Any, field: str, *, whole: bool) -> int | float | None:
    """A form field as a number; empty is None. Bad text gives a 400 in words."""
    raw = (form.get(field) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise BadRequestError(f"{LIMIT_LABELS[field]} must be {kind}, not {raw!r}.", code="bad_limits",
                              details={"field": field}) from None
    if not whole and not math.isfinite(value):
        raise BadRequestError(f"{LIMIT_LABELS[field]} must be a finite number.", code="bad_limits",
                              details={"field": field})
    return value


def _limits_from(form: Any) -> dict[str, Any]:
    return {f: _parse_number(form, f, whole=f != "rate_limit_per_s") for f in LIMIT_FIELDS}


class KeysPageController(ConsoleController):
    dependencies = console_dependencies("keys")

    async def _page(self, user: SessionUser, keys: KeyService, *, status_code: int = 200,
                    error: str | None = None, notice: str | None = None, new_key: dict[str, Any] | None = None,
                    values: dict[str, Any] | None = None) -> Template:
        principal = user.principal()
        shown = [key_view(k, principal) for k in _visible(await keys.list(), principal)]
        return render("keys.html", user, active="keys", status_code=status_code, keys=shown,
                      roles=creatable_roles(principal), error=error, notice=notice, new_key=new_key,
                      values=values or {}, limit_labels=LIMIT_LABELS)

    async def _failed(self, request: HTMXRequest, user: SessionUser, keys: KeyService, exc: FlashMLError,
                      values: dict[str, Any] | None = None) -> Template:
        """An error in words: the alert alone for htmx (swapped into the page's alert), else the whole page."""
        if request.htmx:
            return HTMXTemplate(template_name="_keys_alert.html", context={"error": exc.message},
                                status_code=exc.status, headers=NO_STORE, re_target="#keys-alert",
                                re_swap="outerHTML")
        return await self._page(user, keys, status_code=exc.status, error=exc.message, values=values)

    @get("/keys")
    async def keys_page(self, user: SignedIn, keys: Injected[KeyService]) -> Template:
        return await self._page(user, keys)

    @post("/keys", status_code=200, guards=MANAGE)
    async def create_key(self, request: HTMXRequest, user: SignedIn, keys: Injected[KeyService]) -> Template:
        form = await request.form()
        values = {k: (form.get(k) or "") for k in ("name", "role", "models", *LIMIT_FIELDS)}
        try:
            principal = user.principal()
            role = values["role"] or "inference"
            if role not in KEY_ROLES:
                raise BadRequestError(f"Unknown role {role!r}; use one of: {', '.join(KEY_ROLES)}.",
                                      code="bad_role")
            require_may_manage_key(principal, role)
            models = [m for m in values["models"].split(",") if m.strip()] or None
            limits = _limits_from(form)
            if limits["weight"] is None:
                limits["weight"] = 1
            key = await keys.create(name=values["name"].strip(), role=role, models=models,
                                    actor=principal.actor, **limits)
        except FlashMLError as exc:
            return await self._failed(request, user, keys, exc, values=values)
        return await self._page(user, keys, new_key=key_view(key, user.principal()),
                                notice=f"Created the key {key.name!r}.")

    async def _change(self, request: HTMXRequest, user: SessionUser, keys: KeyService, key_id: RowId,
                      action: str) -> Template:
        principal = user.principal()
        try:
            require_may_manage_key(principal, (await keys.get(key_id)).role)
            if action == "revoke":
                await keys.revoke(key_id, actor=principal.actor)
                notice = "revoked: it no longer works"
            else:
                await keys.set_limits(key_id, actor=principal.actor, **_limits_from(await request.form()))
                notice = "limits saved"
            key = await keys.get(key_id)
        except FlashMLError as exc:
            return await self._failed(request, user, keys, exc)
        if request.htmx:
            row = {"key": key_view(key, principal), "csrf_token": user.csrf_token, "can_manage": True,
                   "limit_labels": LIMIT_LABELS, "row_notice": notice}
            return HTMXTemplate(template_name="_key_row.html", context=row, headers=NO_STORE)
        return await self._page(user, keys, notice=f"Key {key.name!r}: {notice}.")

    @post("/keys/{key_id:int}/revoke", status_code=200, guards=MANAGE)
    async def revoke_key(self, request: HTMXRequest, user: SignedIn, keys: Injected[KeyService],
                         key_id: RowId) -> Template:
        return await self._change(request, user, keys, key_id, "revoke")

    @post("/keys/{key_id:int}/limits", status_code=200, guards=MANAGE)
    async def set_limits(self, request: HTMXRequest, user: SignedIn, keys: Injected[KeyService],
                         key_id: RowId) -> Template:
        return await self._change(request, user, keys, key_id, "limits")
