"""The drift service on a real database (SQLite and PostgreSQL) and a real prediction log folder: when a version is
scored, a feature crossing its threshold (audited once), the metrics, a restart, retention, and a drifted canary
rolled back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from flashml.db import audit
from flashml.db import models as models_db
from flashml.db.engine import open_database
from flashml.monitoring import drift_store
from flashml.monitoring.drift_metrics import DriftCollector
from flashml.monitoring.drift_service import DriftService
from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_records import LogConfig
from flashml.records import parse_body
from flashml.registry.aliases import AliasService
from flashml.registry.requests import AliasUpdate, DriftChange

MONITOR = {"enabled": True, "reference_size": 40, "window_size": 40, "min_predictions": 30, "threshold": 0.2}


class Bench:
    """A database with model m (versions 1 and 2 ready), a prediction log on, and the drift service over both."""

    def __init__(self, engine, log: PredictionLog, aliases: AliasService, drift: DriftService) -> None:
        self.engine, self.log, self.aliases, self.drift = engine, log, aliases, drift
        self.rng = np.random.default_rng(5)

    def send(self, version: int, requests: int, shift: float = 0.0) -> None:
        for _ in range(requests):
            x = self.rng.normal(0, 1, (25, 3)).astype(np.float32)
            x[:, 2] += shift
            self.log.offer("m", version, {"x": x}, {"y": x.sum(axis=1, keepdims=True)}, None)

    async def events(self, action: str) -> list[dict]:
        return [e for e in await audit.list_events(self.engine) if e["action"] == action]


async def _bench(folder: Path, target: Path | str, log_config: LogConfig | None = None) -> Bench:
    engine = await open_database(target)
    for _ in range(2):
        version = await models_db.create_version(engine, "m", created_by="t", source_name="m.onnx", size_bytes=1)
        await models_db.update_version(engine, version["id"], state="ready")
    log = PredictionLog(folder / "predictions", 3600, 10**9)
    await log.start()
    log.set_config("m", log_config or LogConfig(enabled=True, retention_s=3600, max_bytes=10**9))
    aliases = AliasService(engine)
    drift = DriftService(engine, log, aliases, interval_s=3600, retention_s=3600)
    await drift.load()
    return Bench(engine, log, aliases, drift)


async def _close(bench: Bench) -> None:
    await bench.log.close()
    await bench.engine.dispose()


async def _monitor(bench: Bench, **change) -> None:
    config = await bench.drift.check_change(parse_body({**MONITOR, **change}, DriftChange), "m")
    await bench.drift.configure("m", config, actor="t")


def test_waits_for_a_full_reference_then_for_the_window_and_says_why(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target)
        off = await bench.drift.check("m")
        await _monitor(bench)
        bench.send(1, 20)
        short_reference = await bench.drift.check("m")
        bench.send(1, 20 + 10)
        short_window = await bench.drift.check("m")
        await _close(bench)
        return off, short_reference, short_window

    off, short_reference, short_window = asyncio.run(run())
    assert off.enabled is False and off.versions == []
    first = short_reference.versions[0]
    assert (first.version, first.scored) == (1, False)
    assert first.reason == "the reference holds 20 of the first 40 logged predictions it needs"
    assert short_window.versions[0].reason == "the current window holds 10 of the 30 predictions it needs"
    assert short_window.versions[1].reason == "the reference holds 0 of the first 40 logged predictions it needs"


def test_a_shifted_feature_crosses_once_is_audited_and_shows_in_the_metrics(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target)
        await _monitor(bench)
        bench.send(1, 40)  # the reference
        bench.send(1, 40)  # the same distribution
        calm = await bench.drift.check("m")
        bench.send(1, 40, shift=2.0)  # feature x[2] moves
        shifted = await bench.drift.check("m")
        again = await bench.drift.check("m")  # still above: no second audit entry
        events = await bench.events("model.drift")
        registry = CollectorRegistry()
        registry.register(DriftCollector(bench.drift))
        metrics = generate_latest(registry).decode()
        series = await drift_store.series(bench.engine, "m", 1)
        # a restart reads the newest scores back: the alert stands and is not audited again
        restarted = DriftService(bench.engine, bench.log, bench.aliases, interval_s=3600, retention_s=3600)
        await restarted.load()
        alert_after_restart = restarted.latest[("m", 1)].alert
        await restarted.check("m")
        events_after_restart = await bench.events("model.drift")
        await _close(bench)
        return calm, shifted, again, events, metrics, series, alert_after_restart, events_after_restart

    calm, shifted, again, events, metrics, series, alert_after_restart, events_after_restart = asyncio.run(run())
    scores = {s.feature: s for s in calm.versions[0].scores}
    assert set(scores) == {"x[0]", "x[1]", "x[2]", "output"} and not calm.versions[0].alert
    assert all(s.score < 0.2 for s in scores.values())
    scores = {s.feature: s for s in shifted.versions[0].scores}
    assert scores["x[2]"].above and scores["x[2]"].score > 1 and scores["x[2]"].p_value < 1e-6
    assert not scores["x[0]"].above and not scores["x[1]"].above
    assert shifted.versions[0].alert and again.versions[0].alert
    # the output (the sum of the three columns) moved with x[2]
    assert sorted((e["target"], e["detail"]["feature"]) for e in events) == [("m/v1", "output"), ("m/v1", "x[2]")]
    detail = next(e["detail"] for e in events if e["detail"]["feature"] == "x[2]")
    assert detail["threshold"] == 0.2 and detail["score"] > 1 and detail["version"] == 1
    assert 'flashml_drift_alert{model="m",version="1"} 1.0' in metrics
    assert 'flashml_drift_threshold{model="m",version="1"} 0.2' in metrics
    assert 'flashml_drift_score{feature="x[2]",model="m",version="1"}' in metrics
    assert len(series) == 3 * 4 and series[0]["at"] <= series[-1]["at"]
    assert alert_after_restart and len(events_after_restart) == len(events)


def test_redacted_inputs_are_watched_through_their_means(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target,
                             LogConfig(enabled=True, redact_inputs=True, retention_s=3600, max_bytes=10**9))
        await _monitor(bench, reference_size=200, window_size=200, min_predictions=200)
        bench.send(1, 200)
        bench.send(1, 200, shift=1.0)
        check = await bench.drift.check("m")
        await _close(bench)
        return {s.feature: s for s in check.versions[0].scores}

    scores = asyncio.run(run())
    assert scores["x[2]"].above and not scores["x[0]"].above and not scores["x[1]"].above


def test_a_canary_that_drifts_past_its_guard_goes_back_to_the_stable_version(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target)
        await _monitor(bench)
        split = {"versions": {"1": 90, "2": 10}, "guard": {"max_drift": 0.5}}
        await bench.aliases.set_alias("m", "production", parse_body(split, AliasUpdate), actor="t")
        bench.send(2, 40)
        bench.send(2, 40, shift=0.4)  # a small shift: above nothing yet
        small = await bench.drift.check("m")
        bench.send(2, 40, shift=3.0)
        large = await bench.drift.check("m")
        route = bench.aliases.route("m", "production")
        rollbacks = await bench.events("model.alias_auto_rollback")
        await _close(bench)
        return small, large, route, rollbacks

    small, large, route, rollbacks = asyncio.run(run())
    assert small.rolled_back == [] and large.rolled_back == ["production"]
    assert route is not None and route.numbers == [1]
    detail = rollbacks[0]["detail"]
    assert (detail["canary"], detail["stable"], detail["crossed"], detail["feature"]) == (2, 1, ["max_drift"], "x[2]")
    assert detail["drift"] > 0.5 and detail["max_drift"] == 0.5
    assert rollbacks[0]["actor"] == "flashml/guard"


def test_a_model_that_does_not_allow_rollback_keeps_its_canary(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target)
        await _monitor(bench, rollback=False)
        split = {"versions": {"1": 90, "2": 10}, "guard": {"max_drift": 0.5}}
        await bench.aliases.set_alias("m", "production", parse_body(split, AliasUpdate), actor="t")
        bench.send(2, 40)
        bench.send(2, 40, shift=3.0)
        check = await bench.drift.check("m")
        route = bench.aliases.route("m", "production")
        await _close(bench)
        return check, route

    check, route = asyncio.run(run())
    assert check.versions[1].alert and check.rolled_back == [] and route is not None and route.numbers == [1, 2]


def test_old_scores_and_those_of_deleted_versions_are_removed(tmp_path, db_target):
    async def run():
        bench = await _bench(tmp_path, db_target)
        await _monitor(bench)
        bench.send(1, 80)
        bench.send(2, 80)
        await bench.drift.check("m")
        bench.drift.clock = lambda: 10**10  # far in the future: every score is past its retention
        version_2 = await models_db.get_version(bench.engine, "m", 2)
        await models_db.delete_version(bench.engine, version_2["id"])
        before = await drift_store.remove_old(bench.engine, 0)  # only the deleted version's rows
        await bench.drift.check_all()  # scores v1 again, at the new time, then removes what is past retention
        after = await drift_store.series(bench.engine, "m", 1)
        await _close(bench)
        return before, after

    before, after = asyncio.run(run())
    assert before == 4 and len(after) == 4 and {row["at"] for row in after} == {10**10}


def test_a_feature_named_after_a_tensor_of_any_length_is_scored_and_stored(tmp_path, db_target):
    """ONNX bounds no tensor name: a feature named after a 300-character input was refused by PostgreSQL
    (VARCHAR(255)), failing the model's whole drift round; SQLite stored it. Both keep it whole now."""
    name = "embedding_" + "x" * 290

    async def run():
        bench = await _bench(tmp_path, db_target)
        await _monitor(bench)
        for _ in range(80):
            x = bench.rng.normal(0, 1, (25, 2)).astype(np.float32)
            bench.log.offer("m", 1, {name: x}, {"y": x.sum(axis=1, keepdims=True)}, None)
        report = await bench.drift.check("m")
        series = await drift_store.series(bench.engine, "m", 1)
        await _close(bench)
        return report, series

    report, series = asyncio.run(run())
    assert {s.feature for s in report.versions[0].scores} == {f"{name}[0]", f"{name}[1]", "output"}
    assert {row["feature"] for row in series} == {f"{name}[0]", f"{name}[1]", "output"}
