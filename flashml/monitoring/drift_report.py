"""A version's drift scores over time, grouped by feature, for the API and the console's chart."""

from __future__ import annotations

from flashml.db import models as models_db
from flashml.errors import ModelNotFoundError, VersionNotFoundError
from flashml.monitoring import drift_store as store
from flashml.monitoring.drift_records import DriftPoint, DriftReport, DriftSeries
from flashml.monitoring.drift_service import DriftService


async def drift_report(drift: DriftService, model: str, version: int | None = None,
                       since: float | None = None) -> DriftReport:
    """``version``'s scores since ``since`` (default: the newest version that has any), oldest first."""
    if not await store.model_exists(drift.engine, model):
        raise ModelNotFoundError(model)
    versions = await store.scored_versions(drift.engine, model)
    if version is None:
        version = versions[0] if versions else None
    elif version not in versions and not await _is_version(drift, model, version):
        raise VersionNotFoundError(model, version)
    config = drift.config(model)
    rows = [] if version is None else await store.series(drift.engine, model, version, since)
    by_feature: dict[str, list[dict]] = {}
    for row in rows:
        by_feature.setdefault(row["feature"], []).append(row)
    features = [DriftSeries(feature=name, kind=points[-1]["kind"], latest=points[-1]["score"],
                            above=points[-1]["score"] > config.threshold,
                            points=[DriftPoint(at=p["at"], score=p["score"], p_value=p["p_value"]) for p in points])
                for name, points in sorted(by_feature.items(), key=lambda item: _order(item[0]))]
    state = drift.latest.get((model, version)) if version is not None else None
    return DriftReport(model=model, version=version, versions=versions, threshold=config.threshold,
                       alert=state.alert if state is not None and config.enabled else False,
                       checked_at=rows[-1]["at"] if rows else None, config=drift.view(model), features=features)


def _order(feature: str) -> tuple[int, str, int]:
    """Inputs by name and column number (x[2] before x[10]), the output last."""
    if feature.startswith("output"):
        return (1, feature, 0)
    name, _, column = feature.partition("[")
    return (0, name, int(column.rstrip("]")) if column.rstrip("]").isdigit() else -1)


async def _is_version(drift: DriftService, model: str, version: int) -> bool:
    return await models_db.get_version(drift.engine, model, version) is not None
