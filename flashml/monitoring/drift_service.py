"""Drift detection in the background: every ``drift_interval_s``, each monitored ready version is scored.

For a model whose drift settings are on (``drift_config``), each ready version's reference (its first logged
predictions, or a dataset's rows) is compared with its current window of logged predictions, per input feature
and for the output (``drift_features``). Each round's scores go to ``drift_scores`` (kept as long as logged
predictions are, ``prediction_log_retention_s``) and the newest stay in memory for ``/metrics``. A feature that
goes from below the threshold to above it writes a ``model.drift`` audit entry; a guarded canary that drifted
past its guard's ``max_drift`` is rolled back (``drift_rollback``). Nothing here runs on the request path: the
prediction log is read from its files, and the maths runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import audit, changes
from flashml.db import models as models_db
from flashml.errors import BadRequestError, FlashMLError, ModelNotFoundError
from flashml.event_loop import every
from flashml.monitoring import drift_store as store
from flashml.monitoring.drift_config import DriftConfig
from flashml.monitoring.drift_features import compare, slim
from flashml.monitoring.drift_math import FeatureDrift
from flashml.monitoring.drift_records import DriftCheck, DriftConfigView, DriftScore, VersionCheck
from flashml.monitoring.drift_rollback import roll_back_drifted
from flashml.monitoring.prediction_log_records import LoggedPrediction
from flashml.registry.aliases import AliasService
from flashml.registry.requests import DriftChange

log = logging.getLogger("flashml.drift")
ACTOR = "flashml/drift"


class PredictionReader(Protocol):
    """What drift reads of the prediction log (``prediction_log.PredictionLog``)."""

    async def read(self, model: str, version: int, *, first: int | None = None, last: int | None = None,
                   since: float | None = None) -> list[LoggedPrediction]: ...


class ReferenceRows(Protocol):
    """A dataset as a reference: its rows run through a version (built in the jobs layer, which owns datasets)."""

    async def exists(self, dataset_id: str) -> bool: ...

    async def sample(self, model: str, version: int, dataset_id: str, rows: int) -> list[LoggedPrediction]: ...


@dataclass(frozen=True)
class VersionState:
    """A version's newest round: what ``/metrics`` shows and what the next round's crossings compare with."""

    at: float
    threshold: float
    scores: dict[str, DriftScore]

    @property
    def alert(self) -> bool:
        return any(s.above for s in self.scores.values())


def scored(feature: str, drift: FeatureDrift, threshold: float) -> DriftScore:
    return DriftScore(feature=feature, kind=drift.kind, score=drift.score, statistic=drift.statistic,
                      p_value=drift.p_value, above=drift.score > threshold)


class DriftService:
    def __init__(self, engine: AsyncEngine, predictions: PredictionReader, aliases: AliasService, *,
                 interval_s: float, retention_s: float, references: ReferenceRows | None = None,
                 clock: Callable[[], float] = time.time, node: str = "",
                 is_leader: Callable[[], bool] = lambda: True) -> None:
        self.engine = engine
        self.node = node  # names this node's changes in the change feed (flashml.cluster)
        # Rounds run on one node, the leader, over its own prediction log: behind a balancer that spreads requests
        # evenly, what one node logged is a fair sample of all the traffic (a check on demand reads its own node).
        self.is_leader = is_leader
        self.predictions = predictions
        self.aliases = aliases
        self.references = references
        self.interval_s = interval_s
        self.retention_s = retention_s
        self.clock = clock
        self.configs: dict[str, DriftConfig] = {}
        self.latest: dict[tuple[str, int], VersionState] = {}
        self.last_checks: dict[str, DriftCheck] = {}  # model -> its newest round: why a version waits, for the page
        # (model, version) -> (the settings it was read for, a complete reference): read once, not every round
        self._references: dict[tuple[str, int], tuple[tuple, list[LoggedPrediction]]] = {}
        self._round = asyncio.Lock()  # the background round and a check on demand take turns
        self._task: asyncio.Task | None = None

    # ---- settings ----

    async def load(self) -> None:
        """The stored settings, and each version's newest scores (so a restart neither forgets nor re-alerts)."""
        self.configs = {m: DriftConfig.from_dict(c) for m, c in (await store.load_configs(self.engine)).items()}
        states: dict[tuple[str, int], VersionState] = {}
        for row in await store.latest(self.engine):
            key = (row["model"], row["version"])
            threshold = self.config(row["model"]).threshold
            state = states.setdefault(key, VersionState(row["at"], threshold, {}))
            state.scores[row["feature"]] = DriftScore(feature=row["feature"], kind=row["kind"], score=row["score"],
                                                      statistic=row["statistic"], p_value=row["p_value"],
                                                      above=row["score"] > threshold)
        self.latest = states

    def config(self, model: str) -> DriftConfig:
        return self.configs.get(model) or DriftConfig()

    def view(self, model: str) -> DriftConfigView:
        return DriftConfigView(**self.config(model).to_dict())

    async def check_change(self, change: DriftChange, model: str) -> DriftConfig:
        """The model's settings after ``change`` (nothing stored yet), or a 400 naming the field that is wrong."""
        config = self.config(model).changed(change)
        if config.reference == "dataset" and config.reference_dataset is not None and (
                self.references is None or not await self.references.exists(config.reference_dataset)):
            raise BadRequestError(f"There is no dataset {config.reference_dataset!r}: upload it under Jobs first.",
                                  code="bad_drift_config", details={"field": "drift.reference_dataset"})
        return config

    async def configure(self, model: str, config: DriftConfig, *, actor: str) -> DriftConfigView:
        if not await store.save_config(self.engine, model, config.to_dict(),
                                       announce=changes.Change(changes.DRIFT, self.node, model=model)):
            raise ModelNotFoundError(model)
        self.configs[model] = config
        await audit.record(self.engine, actor, "model.drift_config", model, config.to_dict())
        return self.view(model)

    async def forget(self, model: str, version: int | None = None) -> None:
        """A model or version was deleted (``RegistryService.on_delete``): its scores and state go too."""
        for known in (self.latest, self._references):
            for key in [k for k in known if k[0] == model and version in (None, k[1])]:
                del known[key]
        if version is None:
            self.configs.pop(model, None)
            self.last_checks.pop(model, None)
        await store.remove_for(self.engine, model, version)

    # ---- rounds ----

    async def apply(self, model: str) -> None:
        """Follow a model's stored settings, changed on another node (flashml.cluster)."""
        stored = (await store.load_configs(self.engine)).get(model)
        if stored is None:
            self.configs.pop(model, None)
        else:
            self.configs[model] = DriftConfig.from_dict(stored)

    def start(self) -> None:
        self._task = asyncio.create_task(every(self.interval_s, self._leader_round, log, "the drift check"))

    async def _leader_round(self) -> None:
        if self.is_leader():
            await self.check_all()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        async with self._round:  # a check on demand finishes first
            pass


    async def check_all(self) -> list[DriftCheck]:
        """One round over every monitored model, then the retention of old scores."""
        stored = await store.load_configs(self.engine)  # a deleted model's settings went with it
        self.configs = {m: DriftConfig.from_dict(c) for m, c in stored.items()}
        checks = []
        for model, config in sorted(self.configs.items()):
            if config.enabled:
                try:
                    checks.append(await self.check(model))
                except ModelNotFoundError:  # deleted since the settings were read: the others go on
                    continue
        for key in [k for k in self.latest if not self.config(k[0]).enabled]:
            del self.latest[key]
        removed = await store.remove_old(self.engine, self.clock() - self.retention_s)
        if removed:
            log.info("removed %d drift scores past their retention", removed)
        return checks

    async def check(self, model: str) -> DriftCheck:
        """Score every ready version of ``model`` now."""
        async with self._round:
            if not await store.model_exists(self.engine, model):
                raise ModelNotFoundError(model)
            config, now = self.config(model), self.clock()
            if not config.enabled:
                return DriftCheck(model=model, at=now, enabled=False, versions=[], rolled_back=[])
            ready = [v["version"] for v in await models_db.list_versions(self.engine, model, state="ready")]
            for known in (self.latest, self._references):  # archived or deleted: a number may come back
                for key in [k for k in known if k[0] == model and k[1] not in ready]:
                    del known[key]
            results, rolled = [], []
            for number in sorted(ready):
                result, drifts = await self._check_version(model, number, config, now)
                results.append(result)
                if drifts and config.rollback:
                    rolled += await roll_back_drifted(self.aliases, model, number, drifts)
            check = self.last_checks[model] = DriftCheck(model=model, at=now, enabled=True, versions=results,
                                                         rolled_back=rolled)
            return check

    async def _check_version(self, model: str, version: int, config: DriftConfig,
                             now: float) -> tuple[VersionCheck, dict[str, FeatureDrift]]:
        previous = self.latest.get((model, version))
        reference = await self._reference(model, version, config)
        if isinstance(reference, str):
            return self._waiting(version, reference, previous), {}
        current = await self._current(model, version, config, reference, now)
        if len(current) < config.min_predictions:
            return self._waiting(version, f"the current window holds {len(current)} of the {config.min_predictions} "
                                          "predictions it needs", previous), {}
        drifts = await asyncio.to_thread(compare, reference, current)
        await store.add_scores(self.engine, model, version, now, drifts)
        scores = {f: scored(f, d, config.threshold) for f, d in drifts.items()}
        state = VersionState(now, config.threshold, scores)
        self.latest[(model, version)] = state
        for feature, score in scores.items():
            was_above = previous is not None and feature in previous.scores and previous.scores[feature].above
            if score.above and not was_above:
                await self._alert(model, version, score, config.threshold)
        return VersionCheck(version=version, scored=True, reason=None, alert=state.alert,
                            scores=list(scores.values())), drifts

    @staticmethod
    def _waiting(version: int, reason: str, previous: VersionState | None) -> VersionCheck:
        return VersionCheck(version=version, scored=False, reason=reason,
                            alert=previous is not None and previous.alert, scores=[])

    async def _alert(self, model: str, version: int, score: DriftScore, threshold: float) -> None:
        log.warning("drift: %s v%d %s scored %.4f, above the threshold %g", model, version, score.feature,
                    score.score, threshold)
        detail = {"version": version, "feature": score.feature, "kind": score.kind, "score": round(score.score, 4),
                  "threshold": threshold}
        if score.p_value is not None:
            detail["p_value"] = float(f"{score.p_value:.3g}")
        await audit.record(self.engine, ACTOR, "model.drift", f"{model}/v{version}", detail)

    async def _reference(self, model: str, version: int, config: DriftConfig) -> list[LoggedPrediction] | str:
        """The version's reference sample, or why there is none yet (in words)."""
        cached = self._references.get((model, version))
        if cached is not None and cached[0] == config.reference_key:
            return cached[1]
        if config.reference == "dataset":
            if self.references is None or config.reference_dataset is None:
                return "no dataset is set as the reference"
            try:
                sample = await self.references.sample(model, version, config.reference_dataset, config.reference_size)
            except FlashMLError as exc:
                return f"the reference dataset cannot be used: {exc.message}"
        else:
            sample = await self.predictions.read(model, version, first=config.reference_size)
            if len(sample) < config.reference_size:
                return (f"the reference holds {len(sample)} of the first {config.reference_size} logged predictions "
                        "it needs")
        if not sample:
            return "the reference is empty"
        sample = await asyncio.to_thread(slim, sample)  # kept while the version is watched: only what is read
        self._references[(model, version)] = (config.reference_key, sample)
        return sample

    async def _current(self, model: str, version: int, config: DriftConfig, reference: Sequence[LoggedPrediction],
                       now: float) -> list[LoggedPrediction]:
        since = now - config.window_s if config.window_s else None
        if config.reference == "first":  # the window starts after the reference, never overlapping it
            after = reference[-1].at
            since = after if since is None else max(since, after)
            window = await self.predictions.read(model, version, last=config.window_size, since=since)
            return [p for p in window if p.at > after]
        return await self.predictions.read(model, version, last=config.window_size, since=since)
