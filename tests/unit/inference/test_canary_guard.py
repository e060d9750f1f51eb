"""The canary guard's arithmetic, without a server: windows by subtraction, thresholds, the stable version; and
in-process services on a real database (SQLite and PostgreSQL) for when a split starts being measured."""

from __future__ import annotations

import pytest

from flashml.composition import open_services
from flashml.errors import BadRequestError
from flashml.inference.canary_guard import Totals, totals, verdict
from flashml.records import parse_body
from flashml.registry.alias_rules import Guard, parse_guard
from flashml.registry.aliases import Route
from flashml.registry.requests import AliasUpdate
from flashml.settings import load_settings
from flashml.telemetry import histogram as hist
from flashml.telemetry.recorder import RequestMetrics
from tests.helpers.in_process import publish_offset_versions, run
from tests.helpers.postgres import database_settings

SPLIT = {"1": 90, "2": 10}


def test_the_stable_version_is_the_heaviest():
    assert Route.from_versions({"3": 95, "4": 5}).stable == 3
    assert Route.from_versions({"3": 5, "4": 95}).stable == 4
    assert Route.from_versions({"3": 50, "4": 50}).stable == 3


def test_a_window_is_the_difference_of_two_snapshots():
    clock = [600.0]
    recorder = RequestMetrics(clock=lambda: clock[0])
    for _ in range(10):
        recorder.record("m", 2, 200, 0.010)
    before = totals(recorder, "m", 2)
    for status in (200, 500, 400, 200):
        recorder.record("m", 2, status, 0.300)
    recorder.record("m", 1, 500, 0.001)  # another version: not the canary's
    window = totals(recorder, "m", 2).minus(before)
    assert (window.requests, window.errors) == (4, 2)
    assert window.latency == {hist.bin_of(0.300): 2}


def test_thresholds_and_the_least_number_of_requests():
    route = Route.from_versions(SPLIT, Guard(0.1, 200.0, 60.0, 5))
    slow = {hist.bin_of(0.5): 5}
    assert verdict(route, Totals(4, 4, {})) is None  # too few requests to judge
    assert verdict(route, Totals(10, 1, {hist.bin_of(0.01): 9})) is None  # 10 % is not above 10 %
    crossed = verdict(route, Totals(10, 2, {hist.bin_of(0.01): 8}))
    assert crossed["crossed"] == ["max_error_rate"] and crossed["error_rate"] == 0.2
    crossed = verdict(route, Totals(5, 0, slow))
    assert crossed["crossed"] == ["max_p99_ms"] and crossed["p99_ms"] > 200
    assert verdict(Route.from_versions(SPLIT, Guard(None, 1000.0)), Totals(20, 20, {})) is None  # no rate limit


@pytest.mark.parametrize("guard", [{}, {"max_error_rate": -0.1}, {"max_p99_ms": True}, {"max_p99_ms": 5, "x": 1},
                                   {"max_p99_ms": 5, "window_s": "60"}, "fast"])
def test_bad_guards(guard):
    with pytest.raises(BadRequestError) as err:
        parse_guard(parse_body({"versions": SPLIT, "guard": guard}, AliasUpdate).guard, SPLIT)
    assert err.value.code == "bad_alias_guard"


def test_defaults():
    update = parse_body({"versions": SPLIT, "guard": {"max_error_rate": 0.05}}, AliasUpdate)
    assert parse_guard(update.guard, SPLIT) == Guard(0.05, None, 60.0, 20)


async def _errors_before_the_first_check(tmp_path, target) -> tuple[list[dict], dict]:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": False,
                              "canary_check_interval_s": 3600,  # no background check in this test
                              **database_settings(target)}, env={})
    services = await open_services(settings)
    try:
        registry = services.registry
        await publish_offset_versions(registry, tmp_path)
        split = {"versions": {"1": 80, "2": 20}, "guard": {"max_error_rate": 0.2, "min_requests": 5}}
        await registry.aliases.set_alias("m", "production", parse_body(split, AliasUpdate), actor="t")
        for _ in range(6):  # the canary fails at once, before the guard's first round
            services.recorder.record("m", 2, 500, 0.001)
        rolled = await services.guard.check()
        return rolled, (await registry.aliases.get_alias("m", "production")).to_dict()
    finally:
        await services.close()


def test_errors_right_after_a_split_is_set_count(tmp_path, db_target):
    rolled, alias = run(_errors_before_the_first_check(tmp_path, db_target))
    assert [(r["canary"], r["requests"], r["errors"]) for r in rolled] == [(2, 6, 6)]
    assert alias["versions"] == {"1": 100} and alias["guard"] is None
