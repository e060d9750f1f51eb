"""The audit log's reader on a real database (SQLite and PostgreSQL): one visibility rule for every caller, typed
events, and details written as "key: value" lines instead of JSON."""

from __future__ import annotations

import asyncio

from flashml.auth.audit import AuditService
from flashml.auth.principal import Principal
from flashml.auth.records import AuditEvent
from flashml.db import audit
from flashml.db.engine import open_database


def _principal(role: str) -> Principal:
    return Principal(1, "key-one", "k", role, None, "t")


async def _read(target) -> dict[str, list[AuditEvent]]:
    engine = await open_database(target)
    try:
        await audit.record(engine, "ada/console", "version.upload", "m/v1", {"source": "m.onnx", "bytes": 120})
        await audit.record(engine, "ada/console", "model.alias_set", "m/production",
                           {"versions": {"1": 100}, "previous": None})
        for n in range(3):  # newer than every model event
            await audit.record(engine, "ada/console", "key.create", f"key:{n}", {"role": "inference"})
        service = AuditService(engine)
        return {"admin": await service.events(_principal("admin"), 10),
                "viewer": await service.events(_principal("viewer"), 1),
                "viewer keys": await service.events(_principal("viewer"), 10, ("key.",)),
                "viewer versions": await service.events(_principal("viewer"), 10, ("version.",)),
                "admin keys": await service.events(_principal("admin"), 2, ("key.",))}
    finally:
        await engine.dispose()


def test_each_caller_reads_what_it_may_newest_first(db_target):
    read = asyncio.run(_read(db_target))
    assert [e.action for e in read["admin"]] == ["key.create"] * 3 + ["model.alias_set", "version.upload"]
    assert all(isinstance(e, AuditEvent) for e in read["admin"])
    # The viewer's one newest event is the newest of the models' trail, not "nothing" behind three key events.
    assert [e.action for e in read["viewer"]] == ["model.alias_set"]
    assert read["viewer keys"] == []
    assert [e.target for e in read["viewer versions"]] == ["m/v1"]
    assert [e.target for e in read["admin keys"]] == ["key:2", "key:1"]


def test_details_read_as_key_value_lines():
    event = AuditEvent(id=1, at=0.0, actor="flashml/guard", action="model.alias_auto_rollback", target="m/prod",
                       detail={"versions": {"1": 100}, "previous": {"1": 90, "2": 10}, "canary": 2, "window_s": 60.0,
                               "error_rate": 0.25, "p99_ms": None, "crossed": ["max_error_rate"], "force": True})
    assert event.detail_lines == ["versions: 1 = 100", "previous: 1 = 90, 2 = 10", "canary: 2", "window s: 60",
                                  "error rate: 0.25", "p99 ms: none", "crossed: max_error_rate", "force: yes"]
    assert AuditEvent(id=2, at=0.0, actor="a", action="x", target="", detail=None).detail_lines == []
    assert "detail_lines" not in event.to_dict()  # the API sends the detail itself
