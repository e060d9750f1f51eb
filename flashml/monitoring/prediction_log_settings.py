"""Each model's prediction log settings: stored in the models table, checked against the server's limits, audited.

A change keeps the fields it leaves out (``{"enabled": false}`` only switches the log off); a retention or byte
cap above the server's settings is refused with the field it names, rather than silently lowered. Switching
the log off keeps what was logged (until its retention passes); deleting the model removes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from msgspec import UnsetType
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import audit, changes
from flashml.db import models as db
from flashml.db.schema import models
from flashml.errors import BadRequestError, ModelNotFoundError
from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_records import LogConfig
from flashml.registry.records import PredictionLogView
from flashml.registry.requests import PredictionLogChange


def changed_config(change: PredictionLogChange, current: LogConfig, retention_limit: float,
                   bytes_limit: int) -> LogConfig:
    """``current`` with the fields the change sends, or a 400 naming the field past the server's limit."""
    sent: dict[str, Any] = {k: v for k, v in change.to_dict().items() if not isinstance(v, UnsetType)}
    if sent.get("retention_s", 0) > retention_limit:
        raise BadRequestError(f'"retention_s" is at most {retention_limit:g} seconds (the setting '
                              f"prediction_log_retention_s), not {sent['retention_s']:g}.", code="bad_prediction_log",
                              details={"field": "prediction_log.retention_s", "limit": retention_limit})
    if sent.get("max_bytes", 0) > bytes_limit:
        raise BadRequestError(f'"max_bytes" is at most {bytes_limit} (the setting prediction_log_max_bytes), not '
                              f"{sent['max_bytes']}.", code="bad_prediction_log",
                              details={"field": "prediction_log.max_bytes", "limit": bytes_limit})
    return dataclasses.replace(current, **sent)


class PredictionLogSettings:
    def __init__(self, engine: AsyncEngine, log: PredictionLog, *, node: str = "") -> None:
        self.engine = engine
        self.log = log
        self.node = node  # names this node's changes in the change feed (flashml.cluster)

    async def load(self) -> None:
        """Every model's stored settings into the log (at start-up, before the first request)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(models.c.name, models.c.prediction_log))).all()
        for name, stored in rows:
            if stored:
                self.log.set_config(name, LogConfig.from_dict(stored))

    async def apply(self, model: str) -> None:
        """Follow a model's stored settings, changed on another node (flashml.cluster). Each node logs what it
        answers to its own data_dir, under the same settings."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(models.c.prediction_log).where(models.c.name == model))).first()
        if row is not None:
            self.log.set_config(model, LogConfig.from_dict(row[0]) if row[0] else LogConfig())

    def check(self, change: PredictionLogChange, model: str) -> LogConfig:
        """The model's settings after ``change`` (nothing stored yet): a refusal comes before any other change."""
        return changed_config(change, self.log.config(model), self.log.retention_s, self.log.max_bytes)

    async def configure(self, model: str, config: LogConfig, *, actor: str) -> PredictionLogView:
        async with self.engine.begin() as conn:
            res = await conn.execute(update(models).where(models.c.name == model)
                                     .values(prediction_log=config.to_dict()))
            if res.rowcount > 0:
                await changes.write(conn, changes.Change(changes.PREDICTION_LOG, self.node, model=model))
        if res.rowcount == 0:
            raise ModelNotFoundError(model)
        self.log.set_config(model, config)
        await audit.record(self.engine, actor, "model.prediction_log", model, config.to_dict())
        return await self.view(model)

    async def require_model(self, model: str) -> None:
        """404 model_not_found for a model that does not exist (its log, if any, went with it)."""
        if await db.get_model(self.engine, model) is None:
            raise ModelNotFoundError(model)

    async def view(self, model: str) -> PredictionLogView:
        """Settings and counts once what was offered before the call is written (so they agree with an export)."""
        await self.log.flush()
        config = self.log.config(model)
        retention_s, max_bytes = self.log.limits(model)
        records, size, _ = await asyncio.to_thread(self.log.store.totals, model)
        segments = self.log.store.segments(model)
        return PredictionLogView(
            enabled=config.enabled, sample_rate=config.sample_rate, mode=config.mode,
            redact_inputs=config.redact_inputs, retention_s=retention_s, max_bytes=max_bytes,
            limit_retention_s=self.log.retention_s, limit_max_bytes=self.log.max_bytes, records=records, bytes=size,
            oldest_at=segments[0].first_at if segments else None,
            newest_at=max(s.last_at for s in segments) if segments else None,
            written=sum(n for (m, _), n in self.log.written.items() if m == model),
            dropped=self.log.dropped.get(model, 0))
