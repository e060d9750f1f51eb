"""Drift as a canary guard's condition: a canary whose drift passes its guard's ``max_drift`` goes back.

A guard (``registry.alias_rules.Guard``) of a split may name ``max_drift``. Right after a round scores a version,
each split in which that version is a canary (any version but the stable, heaviest one) and whose guard names
``max_drift`` is judged: when the version's highest feature score is above it, and the model's drift settings
allow it (``rollback``), the alias sends every request back to the stable version, through the same
``AliasService.guard_rollback`` as the request guard (``inference/canary_guard.py``), and the audit entry says
drift, which feature and the numbers. The request guard judges errors and latency over its window; drift is
judged here because it is measured here, on the version's logged predictions rather than on a window of requests.
"""

from __future__ import annotations

import logging
from typing import Any

from flashml.monitoring.drift_math import FeatureDrift
from flashml.registry.aliases import AliasService, Route

log = logging.getLogger("flashml.drift")


def drift_verdict(route: Route, version: int, scores: dict[str, FeatureDrift]) -> dict[str, Any] | None:
    """The audit detail of a rollback the scores call for, or None (not a guarded canary, or within max_drift)."""
    guard = route.guard
    if guard is None or guard.max_drift is None or len(route.weights) < 2 or not scores:
        return None
    if version not in route.numbers or version == route.stable:
        return None
    feature, worst = max(scores.items(), key=lambda item: item[1].score)
    if worst.score <= guard.max_drift:
        return None
    return {"canary": version, "stable": route.stable, "crossed": ["max_drift"], "feature": feature,
            "drift": round(worst.score, 4), "max_drift": guard.max_drift}


async def roll_back_drifted(aliases: AliasService, model: str, version: int,
                            scores: dict[str, FeatureDrift]) -> list[str]:
    """Roll back every guarded split of ``model`` whose canary ``version`` drifted past ``max_drift``; the aliases."""
    rolled = []
    for name, route in list(aliases.routes.get(model, {}).items()):
        detail = drift_verdict(route, version, scores)
        if detail is None:
            continue
        if await aliases.guard_rollback(model, name, route, detail):
            log.warning("canary v%d of %s/%s rolled back to v%d: %s drifted to %.4f (max_drift %g)", version, model,
                        name, route.stable, detail["feature"], detail["drift"], detail["max_drift"])
            rolled.append(name)
    return rolled
