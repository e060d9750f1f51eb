"""The cluster node on a real database (SQLite, then PostgreSQL): changes read once each even when an earlier id
commits late, a node's own changes skipped, the leader lease held by one node at a time, live nodes counted, and
both loops living through a database that stops answering."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.exc import OperationalError

from flashml.cluster.node import ClusterNode
from flashml.db import changes
from flashml.db.engine import open_database
from flashml.db.schema import changes as changes_table
from flashml.settings import load_settings


def _node(engine, tmp_path: Path, name: str, interval: float = 0.1) -> ClusterNode:
    settings = load_settings({"data_dir": str(tmp_path / name), "node_id": name, "sync_interval_s": interval,
                              "port": 9000}, env={})
    return ClusterNode(engine, settings)


def _recorder(node: ClusterNode, kind: str = changes.ALIAS) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []

    async def handler(change):
        seen.append((change["id"], change["name"]))

    node.on(kind, handler)
    return seen


async def _insert(engine, change_id: int, name: str, node: str = "other", at: float | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(changes_table).values(id=change_id, at=at or time.time(), node=node,
                                                        kind=changes.ALIAS, model="m", name=name))


def test_each_change_is_applied_once_even_when_an_earlier_id_commits_late(tmp_path, db_target, runner):
    async def go():
        engine = await open_database(db_target)
        try:
            await _insert(engine, 1, "before-start", at=time.time() - 60)  # loaded at start: never applied
            await _insert(engine, 2, "while-loading")  # made while the node loaded: read, applied once
            node = _node(engine, tmp_path, "a")
            await node.begin()
            seen = _recorder(node)
            await _insert(engine, 3, "third")
            await _insert(engine, 5, "fifth")
            await _insert(engine, 6, "mine", node="a")  # its own: already applied where it was made
            first = await node.sync()
            await _insert(engine, 4, "fourth")  # took its id before 5 but committed after it (PostgreSQL)
            second = await node.sync()
            third = await node.sync()
            return seen, first, second, third
        finally:
            await engine.dispose()

    seen, first, second, third = runner.run(go())
    # "while-loading" was already visible when the node started: counted as loaded, not applied again
    assert seen == [(3, "third"), (5, "fifth"), (4, "fourth")]
    assert (first, second, third) == (2, 1, 0)


def test_one_leader_at_a_time_and_the_live_nodes_counted(tmp_path, db_target, runner):
    async def go():
        engine = await open_database(db_target)
        a, b = _node(engine, tmp_path, "a"), _node(engine, tmp_path, "b")
        try:
            await a.begin()
            await b.begin()
            await a.start()
            await b.start()
            await asyncio.sleep(0.5)
            first = (a.leader, b.leader, a.live_nodes, b.live_nodes, sorted(n["node_id"] for n in await a.live()))
            await a.stop()  # gives the lease up and leaves the list
            await asyncio.sleep(0.5)
            after = (b.leader, b.live_nodes, [n["node_id"] for n in await b.live()])
            return first, after
        finally:
            await b.stop()
            await engine.dispose()

    (a_leads, b_leads, a_count, b_count, listed), after = runner.run(go())
    assert a_leads != b_leads and (a_count, b_count) == (2, 2) and listed == ["a", "b"]
    assert after == (True, 1, ["b"])


def test_the_loops_live_through_a_database_that_stops_answering(tmp_path, db_target, runner, caplog):
    """The feed's and the heartbeat's tables taken away for a while (every read fails), then given back: the node
    warns once per loop, keeps running, and applies what changed once the database answers."""
    caplog.set_level(logging.INFO, logger="flashml.cluster")

    async def go():
        engine = await open_database(db_target)
        node = _node(engine, tmp_path, "a")
        try:
            await node.begin()
            seen = _recorder(node)
            await node.start()
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE changes RENAME TO changes_away"))
                await conn.execute(text("ALTER TABLE nodes RENAME TO nodes_away"))
            await asyncio.sleep(1.0)  # about ten rounds of each loop fail
            running = [not t.done() for t in node._tasks]
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE changes_away RENAME TO changes"))
                await conn.execute(text("ALTER TABLE nodes_away RENAME TO nodes"))
            await changes.emit(engine, changes.ALIAS, node="other", model="m", name="after")
            for _ in range(50):
                if seen:
                    break
                await asyncio.sleep(0.05)
            return running, seen
        finally:
            await node.stop()
            await engine.dispose()

    running, seen = runner.run(go())
    assert running == [True, True]
    assert [name for _, name in seen] == ["after"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("the change feed: the database did not answer" in w for w in warned) == 1, warned
    assert sum("the heartbeat: the database did not answer" in w for w in warned) == 1, warned
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_change_whose_apply_hits_a_database_error_is_tried_again_then_given_up(tmp_path, db_target, runner):
    """An apply that meets a database error holds the feed at that change and tries it again next round (in order:
    what came after waits); one that keeps failing is given up after a few rounds, so the feed goes on."""
    async def go():
        engine = await open_database(db_target)
        try:
            node = _node(engine, tmp_path, "a")
            await node.begin()
            attempts: dict[str, int] = {}
            applied: list[str] = []

            async def flaky(change):
                name = change["name"]
                attempts[name] = attempts.get(name, 0) + 1
                if name == "always" or (name == "twice" and attempts[name] <= 2):
                    raise OperationalError("SELECT 1", {}, Exception("the database went away"))
                applied.append(name)

            node.on(changes.ALIAS, flaky)
            for name in ("twice", "after", "always", "last"):
                await changes.emit(engine, changes.ALIAS, node="other", model="m", name=name)
            rounds = []
            for _ in range(12):
                try:
                    rounds.append(await node.sync())
                except OperationalError:
                    rounds.append(-1)
            return applied, attempts, rounds
        finally:
            await engine.dispose()

    applied, attempts, rounds = runner.run(go())
    assert applied == ["twice", "after", "last"]
    assert attempts == {"twice": 3, "after": 1, "always": 5, "last": 1}
    assert rounds[:2] == [-1, -1] and rounds.count(-1) == 6 and rounds[-1] == 0
