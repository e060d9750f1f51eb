"""What the auth services answer with: API keys (never their secrets, except once, at creation), the caller's
identity and the audit log's events."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from flashml.records import Record


class KeyRecord(Record):
    """An API key: who made it, for what role and models, its limits and today's use."""

    id: int
    key_id: str  # the public half of the token, shown in logs and the audit trail
    name: str
    role: str  # admin, maintainer, viewer or inference
    models: list[str] | None  # None: every model
    created_by: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    rate_limit_per_s: float | None  # None: no rate limit
    burst: int | None
    daily_quota: int | None  # admitted inference requests per UTC day; None: unlimited
    weight: int  # share under contention for the batch scheduler
    used_today: int | UnsetType = UNSET  # requests admitted today (not on a revoked key's answer)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class NewKeyRecord(KeyRecord, kw_only=True):
    """A key just created, with its secret: the only time the secret is ever shown."""

    token: str


class AuditEvent(Record):
    """One line of the audit log: who did what to which target, when, with the action's own details."""

    id: int
    at: float
    actor: str  # "ada/console", "ada/key:deploy", "flashml/guard"
    action: str  # "model.alias_set", "key.create", ...
    target: str  # "resnet/production", "key:3", ...
    detail: dict[str, Any] | None

    @property
    def detail_lines(self) -> list[str]:
        """The detail as "key: value" lines a person reads (the JSON API sends ``detail`` itself)."""
        return [f"{_words(key)}: {_value(value)}" for key, value in (self.detail or {}).items()]


def _words(key: str) -> str:
    return str(key).replace("_", " ")


def _value(value: Any) -> str:
    """A detail's value in plain text: nested objects as "key = value" pairs, lists joined, null as none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{_words(k)} = {_value(v)}" for k, v in value.items()) if value else "none"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) if value else "none"
    return str(value)


class UserRecord(Record):
    """A person who signs in to the console (never their password hash)."""

    name: str
    role: str  # admin, maintainer or viewer
    created_at: float
    disabled: bool  # a disabled user cannot sign in; their sessions ended when they were disabled
    locked: bool  # failed sign-ins hold the account back now (as the server counts them; an admin unlocks it)


class SessionIdentity(Record):
    """The console user behind a session."""

    name: str
    role: str


class KeyIdentity(Record):
    """The API key behind a request (never its secret)."""

    id: int
    key_id: str
    name: str
    role: str
    models: list[str] | None  # None: every model
    user: str  # who created the key
    rate_limit_per_s: float | None
    burst: int | None
    daily_quota: int | None
    weight: int


class Identity(Record):
    """GET /api/v1/me: a console session's user and CSRF token (its pages' scripts send it back), or an API key."""

    user: SessionIdentity | UnsetType = UNSET
    csrf_token: str | UnsetType = UNSET
    key: KeyIdentity | UnsetType = UNSET
