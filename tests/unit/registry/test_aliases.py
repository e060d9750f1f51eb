"""Aliases in words and the one answer to "which version serves": the guard's thresholds as a sentence, and the
serving resolution (the production alias, else the newest ready version) that inference and every page read."""

from __future__ import annotations

from flashml.console.filters import FILTERS
from flashml.registry.alias_rules import Guard
from flashml.registry.aliases import SERVED, AliasService, Route, guard_text
from flashml.registry.records import ServingInfo


def test_a_guard_reads_as_a_sentence():
    both = {"max_error_rate": 0.05, "max_p99_ms": 200.0, "window_s": 60.0, "min_requests": 20}
    assert guard_text(both) == "error rate above 5% or p99 above 200 ms over 60 s"
    assert guard_text(Guard(None, 12.5, 30.0)) == "p99 above 12.5 ms over 30 s"
    assert guard_text(Guard(0.001, None)) == "error rate above 0.1% over 60 s"
    assert FILTERS["guard"] is guard_text  # what a console page writes with {{ alias.guard | guard }}


def test_serving_is_the_production_alias_else_the_newest_ready_version():
    aliases = AliasService(engine=None)  # type: ignore[arg-type] - resolution reads memory only
    assert aliases.serving("m", None) is None
    newest = aliases.serving("m", 3)
    assert newest is not None and newest.pick("any key") == 3 and newest.alias is None
    assert newest.info() == ServingInfo(version=3, versions={"3": 100}, alias=None)
    aliases.routes["m"] = {SERVED: Route.from_versions({"1": 100}), "staging": Route.from_versions({"3": 100})}
    served = aliases.serving("m", 3)
    assert served is not None and served.pick("any key") == 1
    assert served.info() == ServingInfo(version=1, versions={"1": 100}, alias=SERVED)
    aliases.routes["m"][SERVED] = Route.from_versions({"1": 90, "2": 10})
    split = aliases.serving("m", 3)
    assert split is not None and split.info() == ServingInfo(version=None, versions={"1": 90, "2": 10}, alias=SERVED)
    assert {split.pick(f"key-{n}") for n in range(200)} == {1, 2}
