"""The caller of a request, and what it may do."""

from __future__ import annotations

from dataclasses import dataclass

KEY_ROLES = ("admin", "inference")


@dataclass(frozen=True)
class Principal:
    key_pk: int
    key_id: str
    name: str
    role: str
    models: frozenset[str] | None  # None: every model
    created_by: str
    rate_limit_per_s: float | None = None  # None: no rate limit
    burst: int | None = None  # None: max(1, ceil(rate))
    daily_quota: int | None = None  # admitted inference requests per UTC day; None: unlimited
    weight: int = 1  # share under contention for the batch scheduler

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_infer(self, model: str) -> bool:
        return self.models is None or model in self.models

    def to_dict(self) -> dict:
        return {"id": self.key_pk, "key_id": self.key_id, "name": self.name, "role": self.role,
                "models": sorted(self.models) if self.models is not None else None, "user": self.created_by,
                "rate_limit_per_s": self.rate_limit_per_s, "burst": self.burst, "daily_quota": self.daily_quota,
                "weight": self.weight}
