"""Drift's rows in the database: each model's settings (``models.drift``) and the scores of each round
(``drift_scores``), with their retention."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db.changes import Change, write
from flashml.db.schema import drift_scores, models, versions
from flashml.monitoring.drift_math import FeatureDrift


async def load_configs(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """model -> its stored drift settings, for the models that have any."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(models.c.name, models.c.drift).where(models.c.drift.is_not(None)))).all()
    return {name: config for name, config in rows if config}


async def save_config(engine: AsyncEngine, model: str, config: dict[str, Any], *,
                      announce: Change | None = None) -> bool:
    """Store a model's drift settings (``announce``: the change feed's row, in the same transaction); False when
    there is no such model."""
    async with engine.begin() as conn:
        res = await conn.execute(update(models).where(models.c.name == model).values(drift=config))
        if res.rowcount > 0:
            await write(conn, announce)
    return res.rowcount > 0


async def model_exists(engine: AsyncEngine, model: str) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(select(models.c.id).where(models.c.name == model))).first() is not None


async def add_scores(engine: AsyncEngine, model: str, version: int, at: float,
                     scores: dict[str, FeatureDrift]) -> None:
    if not scores:
        return
    rows = [{"model": model, "version": version, "feature": feature, "kind": d.kind, "score": d.score,
             "statistic": d.statistic, "p_value": d.p_value, "at": at} for feature, d in scores.items()]
    async with engine.begin() as conn:
        await conn.execute(insert(drift_scores), rows)


async def series(engine: AsyncEngine, model: str, version: int, since: float | None = None,
                 limit: int = 20000) -> list[dict[str, Any]]:
    """A version's scores, oldest first (the newest ``limit`` of them)."""
    query = select(drift_scores).where(drift_scores.c.model == model, drift_scores.c.version == version)
    if since is not None:
        query = query.where(drift_scores.c.at >= since)
    query = query.order_by(drift_scores.c.at.desc(), drift_scores.c.feature).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(r) for r in reversed(rows)]


async def scored_versions(engine: AsyncEngine, model: str) -> list[int]:
    """The versions of ``model`` that have scores, newest first."""
    query = (select(drift_scores.c.version).where(drift_scores.c.model == model).group_by(drift_scores.c.version)
             .order_by(drift_scores.c.version.desc()))
    async with engine.connect() as conn:
        return [int(v) for (v,) in (await conn.execute(query)).all()]


async def latest(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every (model, version, feature)'s newest score: what the alerts and metrics start from after a restart."""
    newest = (select(drift_scores.c.model, drift_scores.c.version, drift_scores.c.feature,
                     func.max(drift_scores.c.id).label("id"))
              .group_by(drift_scores.c.model, drift_scores.c.version, drift_scores.c.feature).subquery())
    query = select(drift_scores).join(newest, drift_scores.c.id == newest.c.id)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def remove_old(engine: AsyncEngine, before: float) -> int:
    """Delete scores older than ``before`` and those of versions that no longer exist; how many went."""
    version_exists = exists().where(and_(versions.c.model_id == models.c.id, models.c.name == drift_scores.c.model,
                                         versions.c.version == drift_scores.c.version))
    async with engine.begin() as conn:
        res = await conn.execute(delete(drift_scores).where((drift_scores.c.at < before) | ~version_exists))
    return res.rowcount


async def remove_for(engine: AsyncEngine, model: str, version: int | None = None) -> None:
    """A deleted model's (or version's) scores: a name or number used again starts without them."""
    query = delete(drift_scores).where(drift_scores.c.model == model)
    if version is not None:
        query = query.where(drift_scores.c.version == version)
    async with engine.begin() as conn:
        await conn.execute(query)
