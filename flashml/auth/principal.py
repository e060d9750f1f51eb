"""The caller of a request (an API key or a console session), and what it may do."""

from __future__ import annotations

from dataclasses import dataclass, field

from flashml.errors import ForbiddenError

# Roles, strongest first. admin: everything, users included. maintainer: models, their config, and
# inference keys. viewer: read only. inference (keys only): V2 inference, nothing of the management API.
USER_ROLES = ("admin", "maintainer", "viewer")
KEY_ROLES = ("admin", "maintainer", "viewer", "inference")
ROLE_RANK = {"inference": 0, "viewer": 1, "maintainer": 2, "admin": 3}
INFERENCE_ROLES = frozenset({"admin", "maintainer", "inference"})

# What each action needs at least.
ACTIONS = {
    "read": "viewer",  # model lists, versions, config, the models' audit trail
    "manage_models": "maintainer",  # upload, delete, archive, restore, change config
    "manage_inference_keys": "maintainer",  # create, list, limit and revoke inference keys
    "manage_keys": "admin",  # keys of every role
    "read_audit": "admin",  # the whole audit log (users, keys, sign-ins)
    "manage_users": "admin",
}


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
    via: str = "key"  # "key" (Authorization: Bearer) or "session" (console cookie)
    csrf_token: str | None = field(default=None, repr=False, compare=False)  # sessions only

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_session(self) -> bool:
        return self.via == "session"

    @property
    def actor(self) -> str:
        """Who acted, as the audit log records it: ``ada/console`` or ``ada/key:deploy``."""
        if self.is_session:
            return f"{self.name}/console"
        return f"{self.created_by}/key:{self.name}"

    @property
    def can_manage_models(self) -> bool:
        return self.has_role("maintainer")

    @property
    def can_read(self) -> bool:
        return self.has_role("viewer")

    def has_role(self, needed: str) -> bool:
        """True when this role is ``needed`` or stronger (inference is below viewer)."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[needed]

    def can(self, action: str) -> bool:
        return self.has_role(ACTIONS[action])

    def may_infer(self, model: str) -> bool:
        return self.role in INFERENCE_ROLES and (self.models is None or model in self.models)

    def to_dict(self) -> dict:
        return {"id": self.key_pk, "key_id": self.key_id, "name": self.name, "role": self.role,
                "models": sorted(self.models) if self.models is not None else None, "user": self.created_by,
                "rate_limit_per_s": self.rate_limit_per_s, "burst": self.burst, "daily_quota": self.daily_quota,
                "weight": self.weight}


def require_role(principal: Principal, needed: str) -> None:
    """403 ``role_forbidden`` unless the caller has ``needed`` or a stronger role."""
    if principal.has_role(needed):
        return
    who = "this console user" if principal.is_session else "this API key"
    raise ForbiddenError(f"This needs the {needed} role (or a stronger one); {who} has the {principal.role} role.",
                         code="role_forbidden", details={"required_role": needed, "role": principal.role})


def require_may_manage_key(principal: Principal, key_role: str) -> None:
    """Maintainers manage inference keys; keys of any other role need an admin."""
    require_role(principal, "maintainer" if key_role == "inference" else "admin")
