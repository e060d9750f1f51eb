"""What the key service answers with: API keys (never their secrets, except once, at creation)."""

from __future__ import annotations

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
