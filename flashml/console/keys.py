"""Console page for API keys: GET /keys (list and create form), POST /keys (create; the secret is shown once),
POST /keys/{id}/revoke and POST /keys/{id}/limits.

The same KeyService and role rules as the JSON API: maintainers manage inference keys, admins keys of any role,
viewers only read. Every form works as a plain POST; with htmx, revoke and limits swap just the key's row.
"""

from __future__ import annotations

import math
import time
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from flashml.auth.csrf import require_csrf, submitted_csrf
from flashml.auth.keys import LIMIT_FIELDS
from flashml.auth.principal import KEY_ROLES, Principal, require_may_manage_key
from flashml.auth.sign_ins import SessionUser, SignInService
from flashml.composition import Services
from flashml.console.pages import current_user, render
from flashml.errors import BadRequestError, FlashMLError
from flashml.web.params import RowId

LIMIT_LABELS = {"rate_limit_per_s": "Rate limit (requests per second)", "burst": "Burst",
                "daily_quota": "Daily quota (requests per UTC day)", "weight": "Weight (1 to 100)"}
_LOGIN_AGAIN = "/login?next=%2Fkeys"


def creatable_roles(principal: Principal) -> list[str]:
    """The key roles this caller may create: admins any, maintainers inference keys, others none."""
    if principal.is_admin:
        return list(KEY_ROLES)
    return ["inference"] if principal.has_role("maintainer") else []


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else ""


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def key_view(key: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """What a row of the table shows."""
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
        "created_text": _when(key.get("created_at")),
        "last_used_text": _when(key.get("last_used_at")) or "never",
        "revoked_text": _when(key.get("revoked_at")),
        "limits_text": ", ".join(limits) or "none",
        "form": {f: "" if key.get(f) is None else _number(key[f]) for f in LIMIT_FIELDS},
        "manageable": not revoked and principal.has_role("maintainer" if key["role"] == "inference" else "admin"),
    }


def _visible(keys: list[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """Admins see every key; everyone else the inference keys (as the API lists them to maintainers)."""
    return keys if principal.is_admin else [k for k in keys if k["role"] == "inference"]


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


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


class KeysPageController(Controller):
    include_in_schema = False

    async def _page(self, user: SessionUser, services: Services, *, status_code: int = 200,
                    error: str | None = None, notice: str | None = None, new_key: dict[str, Any] | None = None,
                    values: dict[str, Any] | None = None) -> Template:
        principal = user.principal()
        keys = [key_view(k, principal) for k in _visible(await services.keys.list(), principal)]
        return render("keys.html", user, active="keys", status_code=status_code, keys=keys,
                      roles=creatable_roles(principal), error=error, notice=notice, new_key=new_key,
                      values=values or {}, limit_labels=LIMIT_LABELS)

    async def _failed(self, request: Request, user: SessionUser, services: Services, exc: FlashMLError,
                      values: dict[str, Any] | None = None) -> Response:
        """An error in words: the alert alone for htmx (swapped into the page's alert), else the whole page."""
        if _is_htmx(request):
            return Template("_keys_alert.html", context={"error": exc.message}, status_code=exc.status,
                            headers={"Cache-Control": "no-store", "HX-Retarget": "#keys-alert",
                                     "HX-Reswap": "outerHTML"})
        return await self._page(user, services, status_code=exc.status, error=exc.message, values=values)

    @get("/keys")
    async def keys_page(self, request: Request, sessions: SignInService, services: Services) -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect(_LOGIN_AGAIN)
        return await self._page(user, services)

    @post("/keys", status_code=200)
    async def create_key(self, request: Request, sessions: SignInService, services: Services) -> Response:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect(_LOGIN_AGAIN, status_code=303)
        form = await request.form()
        values = {k: (form.get(k) or "") for k in ("name", "role", "models", *LIMIT_FIELDS)}
        try:
            require_csrf(user.csrf_token, await submitted_csrf(request))
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
            key = await services.keys.create(name=values["name"].strip(), role=role, models=models,
                                             actor=principal.actor, **limits)
        except FlashMLError as exc:
            return await self._failed(request, user, services, exc, values=values)
        return await self._page(user, services, new_key=key_view(key, user.principal()),
                                notice=f"Created the key {key['name']!r}.")

    async def _change(self, request: Request, sessions: SignInService, services: Services, key_id: RowId,
                      action: str) -> Response:
        user = await current_user(request, sessions)
        if user is None:
            return Redirect(_LOGIN_AGAIN, status_code=303)
        principal = user.principal()
        try:
            require_csrf(user.csrf_token, await submitted_csrf(request))
            require_may_manage_key(principal, (await services.keys.get(key_id))["role"])
            if action == "revoke":
                await services.keys.revoke(key_id, actor=principal.actor)
                notice = "revoked: it no longer works"
            else:
                await services.keys.set_limits(key_id, actor=principal.actor, **_limits_from(await request.form()))
                notice = "limits saved"
            key = await services.keys.get(key_id)
        except FlashMLError as exc:
            return await self._failed(request, user, services, exc)
        if _is_htmx(request):
            row = {"key": key_view(key, principal), "csrf_token": user.csrf_token, "can_manage": True,
                   "limit_labels": LIMIT_LABELS, "row_notice": notice}
            return Template("_key_row.html", context=row, headers={"Cache-Control": "no-store"})
        return await self._page(user, services, notice=f"Key {key['name']!r}: {notice}.")

    @post("/keys/{key_id:int}/revoke", status_code=200)
    async def revoke_key(self, request: Request, sessions: SignInService, services: Services,
                         key_id: RowId) -> Response:
        return await self._change(request, sessions, services, key_id, "revoke")

    @post("/keys/{key_id:int}/limits", status_code=200)
    async def set_limits(self, request: Request, sessions: SignInService, services: Services,
                         key_id: RowId) -> Response:
        return await self._change(request, sessions, services, key_id, "limits")
