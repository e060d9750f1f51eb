"""Alias rules without a server: names, bodies, and how a split shares traffic (deterministic hashing)."""

from __future__ import annotations

from collections import Counter

import pytest

from flashml.errors import BadRequestError
from flashml.records import parse_body
from flashml.registry.aliases import Route, bucket_of, check_alias_name, parse_target, parse_target_text
from flashml.registry.requests import AliasUpdate

KEYS = [f"client-{i}" for i in range(10_000)]  # a fixed set of routing keys: no randomness


@pytest.mark.parametrize("name", ["production", "staging", "a", "v2", "2a", "canary_1", "blue-green", "x" * 64])
def test_good_names(name):
    check_alias_name(name)


@pytest.mark.parametrize("name", ["", "3", "007", "Prod", "-x", "_x", "x" * 65, "a b", "a.b", "a/b", "é"])
def test_bad_names(name):
    with pytest.raises(BadRequestError) as err:
        check_alias_name(name)
    assert err.value.code == "bad_alias_name" and err.value.status == 400


def test_bodies():
    assert parse_target(parse_body({"version": 3}, AliasUpdate)) == {"3": 100}
    assert parse_target(parse_body(b'{"versions": {"3": 95, "04": 5}}', AliasUpdate)) == {"3": 95, "4": 5}
    assert parse_target_text(" 3 ") == {"version": 3}
    assert parse_target_text("3=95, 4=5") == {"versions": {"3": 95, "4": 5}}
    for text in ("", "three", "3=", "3=9x", "=5"):
        with pytest.raises(BadRequestError):
            parse_target_text(text)


def test_a_split_shares_traffic_by_weight_and_sticks():
    route = Route.from_versions({"3": 95, "4": 5})
    counts = Counter(route.pick(k) for k in KEYS)
    assert set(counts) == {3, 4}
    assert 0.04 <= counts[4] / len(KEYS) <= 0.06  # 5 % of the keys, within a point
    assert all(route.pick(k) == route.pick(k) for k in KEYS[:100])  # the same key, the same version
    buckets = Counter(bucket_of(k) for k in KEYS)
    assert len(buckets) == 100 and max(buckets.values()) < 2 * min(buckets.values())  # the hash spreads evenly


def test_ramping_a_canary_up_keeps_its_callers():
    """Versions take buckets in version order, so a newer version growing from 5 to 50 % keeps every key it had."""
    before, after = Route.from_versions({"3": 95, "4": 5}), Route.from_versions({"3": 50, "4": 50})
    on_canary = [k for k in KEYS if before.pick(k) == 4]
    assert on_canary and all(after.pick(k) == 4 for k in on_canary)
    assert 0.48 <= sum(after.pick(k) == 4 for k in KEYS) / len(KEYS) <= 0.52


def test_one_version_needs_no_key():
    assert Route.from_versions({"7": 100}).pick("") == 7
