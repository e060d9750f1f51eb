"""What an alias may carry besides its versions: a canary guard and a shadow, from a PUT body (``AliasUpdate``).

``"guard": {"max_error_rate": 0.05, "max_p99_ms": 200, "window_s": 60, "min_requests": 20}`` (a split only):
the background check (``canary_guard.py``) sends every request back to the stable version (the heaviest
weight) when a canary crosses a threshold; ``"max_drift": 0.25`` does the same when the canary's drift score
passes it (the drift check, ``monitoring/drift_rollback.py``, judges that one).
``"shadow": {"version": 5, "percent": 20}``: that share of the alias's requests is also run, in the background,
by version 5, and the two answers compared (``shadow.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flashml.errors import BadRequestError
from flashml.registry.requests import GuardBody, ShadowBody


@dataclass(frozen=True)
class Guard:
    max_error_rate: float | None
    max_p99_ms: float | None
    window_s: float = 60.0
    min_requests: int = 20
    max_drift: float | None = None  # judged by the drift check (monitoring/drift_rollback.py), not the request window

    def to_dict(self) -> dict[str, Any]:
        """As stored and answered; ``max_drift`` only when set, so a guard without it reads as it always did."""
        out = asdict(self)
        if out["max_drift"] is None:
            del out["max_drift"]
        return out


@dataclass(frozen=True)
class Shadow:
    version: int
    percent: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bad_guard(message: str) -> BadRequestError:
    return BadRequestError(message, code="bad_alias_guard")


def parse_guard(body: GuardBody, versions: dict[str, int]) -> Guard:
    """The guard of a split (its fields' types and ranges were checked when the body was decoded)."""
    if len(versions) < 2:
        raise _bad_guard("A guard watches the canary of a split: send it with versions, e.g. "
                         '{"versions": {"3": 95, "4": 5}, "guard": {...}}.')
    if body.max_error_rate is None and body.max_p99_ms is None and body.max_drift is None:
        raise _bad_guard("A guard needs max_error_rate, max_p99_ms, max_drift or more than one of them.")
    return Guard(body.max_error_rate, body.max_p99_ms, body.window_s, body.min_requests, body.max_drift)


def parse_shadow(body: ShadowBody, versions: dict[str, int]) -> Shadow:
    if str(body.version) in versions:
        raise BadRequestError(f"v{body.version} already answers this alias's requests; shadow a version it does "
                              "not send traffic to.", code="bad_alias_shadow")
    return Shadow(body.version, body.percent)
