"""What an alias may carry besides its versions: a canary guard and a shadow, checked from a PUT body.

``"guard": {"max_error_rate": 0.05, "max_p99_ms": 200, "window_s": 60, "min_requests": 20}`` (a split only):
the background check (``canary_guard.py``) sends every request back to the stable version (the heaviest
weight) when a canary crosses a threshold. ``"shadow": {"version": 5, "percent": 20}``: that share of the
alias's requests is also run, in the background, by version 5, and the two answers compared (``shadow.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flashml.errors import BadRequestError

GUARD_KEYS = {"max_error_rate", "max_p99_ms", "window_s", "min_requests"}
MIN_WINDOW_S, MAX_WINDOW_S = 1.0, 3600.0


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


@dataclass(frozen=True)
class Guard:
    max_error_rate: float | None
    max_p99_ms: float | None
    window_s: float = 60.0
    min_requests: int = 20

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Shadow:
    version: int
    percent: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bad_guard(message: str) -> BadRequestError:
    return BadRequestError(message, code="bad_alias_guard")


def parse_guard(value: Any, versions: dict[str, int]) -> Guard:
    if not isinstance(value, dict) or set(value) - GUARD_KEYS:
        extra = sorted(set(value) - GUARD_KEYS) if isinstance(value, dict) else value
        raise _bad_guard('"guard" is an object with max_error_rate (0 to 1), max_p99_ms, window_s and '
                         f"min_requests; not {extra!r}.")
    if len(versions) < 2:
        raise _bad_guard("A guard watches the canary of a split: send it with versions, e.g. "
                         '{"versions": {"3": 95, "4": 5}, "guard": {...}}.')
    rate, p99 = value.get("max_error_rate"), value.get("max_p99_ms")
    if rate is None and p99 is None:
        raise _bad_guard("A guard needs max_error_rate, max_p99_ms or both.")
    if rate is not None and not (_number(rate) and 0 <= rate <= 1):
        raise _bad_guard(f"max_error_rate is a share of requests from 0 to 1, not {rate!r}.")
    if p99 is not None and not (_number(p99) and p99 > 0):
        raise _bad_guard(f"max_p99_ms is a number of milliseconds above 0, not {p99!r}.")
    window = value.get("window_s", 60)
    if not (_number(window) and MIN_WINDOW_S <= window <= MAX_WINDOW_S):
        raise _bad_guard(f"window_s is from {MIN_WINDOW_S:g} to {MAX_WINDOW_S:g} seconds, not {window!r}.")
    least = value.get("min_requests", 20)
    if isinstance(least, bool) or not isinstance(least, int) or least < 1:
        raise _bad_guard(f"min_requests is a whole number of at least 1, not {least!r}.")
    return Guard(None if rate is None else float(rate), None if p99 is None else float(p99), float(window), least)


def parse_shadow(value: Any, versions: dict[str, int]) -> Shadow:
    if not isinstance(value, dict) or set(value) != {"version", "percent"}:
        raise BadRequestError('"shadow" is {"version": 5, "percent": 20}: the candidate version and the share '
                              "of requests (above 0, up to 100) it also runs.", code="bad_alias_shadow")
    number, percent = value["version"], value["percent"]
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise BadRequestError(f'The shadow "version" must be a version number, not {number!r}.',
                              code="bad_alias_shadow")
    if not (_number(percent) and 0 < percent <= 100):
        raise BadRequestError(f'The shadow "percent" is above 0 and up to 100, not {percent!r}.',
                              code="bad_alias_shadow")
    if str(number) in versions:
        raise BadRequestError(f"v{number} already answers this alias's requests; shadow a version it does not "
                              "send traffic to.", code="bad_alias_shadow")
    return Shadow(number, float(percent))
