"""Aliases resolve from memory: in-process services on a real database (SQLite and PostgreSQL), with every SQL
statement counted."""

from __future__ import annotations

from sqlalchemy import event

from flashml.auth.principal import Principal
from flashml.composition import open_services
from flashml.registry.aliases import AliasService
from flashml.registry.requests import AliasUpdate
from flashml.settings import load_settings
from tests.helpers.in_process import publish_offset_versions, run
from tests.helpers.postgres import database_settings


async def _scenario(tmp_path, target) -> tuple[list[int], list[str], list[str], dict]:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "autotune": False,
                              **database_settings(target)}, env={})
    services = await open_services(settings)
    try:
        registry = services.registry
        await publish_offset_versions(registry, tmp_path)
        await registry.aliases.set_alias("m", "production", AliasUpdate(version=1), actor="t")
        await registry.aliases.set_alias("m", "canary", AliasUpdate(versions={"1": 50, "2": 50}), actor="t")
        principal = Principal(1, "key-one", "k", "inference", None, "t")
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            statements.append(statement)

        event.listen(services.engine.sync_engine, "before_cursor_execute", count)
        try:
            answered = [(await services.inference.resolve(principal, "m", version, routing_key=key)).version
                        for version, key in [(None, None), ("", None), ("2", None), ("production", None),
                                             ("canary", "a"), ("canary", "b"), ("canary", "c"), ("canary", "d")]]
            resolved_with = list(statements)
            await registry.aliases.list_aliases("m")  # a management call does query: the counter works
        finally:
            event.remove(services.engine.sync_engine, "before_cursor_execute", count)
        fresh = AliasService(services.engine)
        await fresh.load()
        return answered, resolved_with, statements, {"loaded": fresh.routes, "live": registry.aliases.routes}
    finally:
        await services.close()


def test_resolution_reads_no_database_and_the_map_matches_it(tmp_path, db_target):
    answered, while_resolving, all_statements, routes = run(_scenario(tmp_path, db_target))
    assert while_resolving == []  # numbers, production, an alias and a split: all from memory
    assert any("aliases" in s for s in all_statements)  # the counter does see queries (a management call)
    assert answered[:4] == [1, 1, 2, 1]
    assert set(answered[4:]) <= {1, 2}
    assert routes["loaded"] == routes["live"]  # what start-up would load is what is served now
