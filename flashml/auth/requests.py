"""The JSON bodies the key service takes: a new API key, and a change of a key's limits.

Decoded strictly by ``flashml.records.parse_body`` (``"5"`` is not a number); the key service checks the ranges
(a weight from 1 to 100, a burst of at least 1) with sentences that name the setting.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, UnsetType

from flashml.records import Body


class NewKey(Body):
    """An API key to create; its secret is in the answer only."""

    code = "invalid_request"
    hints = {"role": ("invalid_request", "role is admin, maintainer, viewer or inference.")}

    name: str
    role: Literal["admin", "maintainer", "viewer", "inference"] = "inference"
    models: list[str] | None = None  # None: every model
    rate_limit_per_s: float | None = None  # None: no rate limit
    burst: int | None = None  # None: max(1, ceil(rate_limit_per_s))
    daily_quota: int | None = None  # None: unlimited
    weight: int = 1  # share under contention, 1 to 100


class KeyLimits(Body):
    """Only the fields sent change; null clears a limit (a cleared weight is 1)."""

    code = "invalid_request"

    rate_limit_per_s: float | None | UnsetType = UNSET
    burst: int | None | UnsetType = UNSET
    daily_quota: int | None | UnsetType = UNSET
    weight: int | None | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not UNSET}


class NewUser(Body):
    """A console user to create (the user service checks the name, the password and the role, with their codes)."""

    code = "invalid_request"

    name: str
    password: str
    role: str = "viewer"  # admin, maintainer or viewer


class UserChanges(Body):
    """Only the fields sent change: ``disabled`` ends the user's sessions at once; ``role`` is admin, maintainer
    or viewer."""

    code = "invalid_request"

    disabled: bool | UnsetType = UNSET
    role: str | UnsetType = UNSET


class PasswordReset(Body):
    """An admin's new password for a user."""

    code = "invalid_request"

    password: str


class PasswordChange(Body):
    """A person's own password change, proven by the current password (no API key needed)."""

    code = "invalid_request"

    name: str
    current_password: str
    new_password: str
