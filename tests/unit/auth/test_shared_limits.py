"""Per-key limits shared by several nodes: the rate split by the live node count, the daily quota counted through
key_usage on one database (SQLite and PostgreSQL), and what a node does while the database does not answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import SQLAlchemyError

from flashml.auth.keys import KeyService
from flashml.auth.limits import KeyLimiter, node_share
from flashml.auth.principal import Principal
from flashml.db.engine import create_engine, open_database
from flashml.errors import TooManyRequestsError
from tests.helpers.postgres import rows
from tests.helpers.server_process import free_port

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC).timestamp()
UNREACHABLE = (OSError, SQLAlchemyError)  # what a database that does not answer raises


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def key(pk: int = 1, **limits) -> Principal:
    return Principal(pk, f"k{pk}", f"key{pk}", "inference", None, "t", **limits)


def admitted(lim: KeyLimiter, p: Principal, tries: int) -> int:
    n = 0
    for _ in range(tries):
        try:
            lim.admit(p)
        except TooManyRequestsError:
            continue
        n += 1
    return n


def test_each_node_gets_its_share_of_rate_and_burst():
    mono, live = Clock(), [3]
    lim = KeyLimiter(clock=mono, wall=Clock(NOON), nodes=lambda: live[0])
    p = key(rate_limit_per_s=30.0, burst=9)
    assert admitted(lim, p, 10) == 3  # burst 9 over 3 nodes
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.details["rate_limit_per_s"] == 30.0 and err.value.details["burst"] == 9  # the key's own
    mono.t += 0.05
    assert admitted(lim, p, 5) == 0  # a node's token comes every 0.1 s: a third of the rate
    mono.t += 0.06
    assert admitted(lim, p, 5) == 1
    mono.t += 1.0
    assert admitted(lim, p, 20) == 3  # refilled at 10/s, up to this node's burst of 3
    live[0] = 1  # the other nodes left: this one holds the whole limit again
    mono.t += 1.0
    assert admitted(lim, p, 40) == 9


def test_a_small_burst_still_admits_one_request_per_node():
    assert [node_share(2, n) for n in (1, 2, 3, 5)] == [2, 1, 1, 1]
    assert node_share(10, 3) == 4  # rounded up: the cluster's burst is at most burst + nodes - 1
    lim = KeyLimiter(clock=Clock(), wall=Clock(NOON), nodes=lambda: 3)
    assert admitted(lim, key(rate_limit_per_s=0.5, burst=2), 5) == 1


def test_no_live_node_count_is_one_node():
    lim = KeyLimiter(clock=Clock(), wall=Clock(NOON), nodes=lambda: 0)
    assert admitted(lim, key(rate_limit_per_s=1.0, burst=4), 10) == 4


@pytest.fixture()
def db(db_target, runner):
    engine = runner.run(open_database(db_target))
    yield engine, runner.run
    runner.run(engine.dispose())


def test_the_daily_quota_is_counted_across_nodes(db):
    engine, run = db
    a = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON))
    b = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON))
    run(a.load())
    run(b.load())
    p = key(5, daily_quota=10)
    assert admitted(a, p, 6) == 6
    run(a.flush())  # A writes its 6
    run(b.flush())  # B (nothing of its own yet) reads the day's totals: 6
    assert admitted(b, p, 10) == 4
    run(b.flush())
    run(a.flush())
    assert admitted(a, p, 5) == 0
    assert run(rows(engine, "select key_pk, count from key_usage")) == [(5, 10)]


def test_between_two_reads_a_node_spends_only_its_share_of_the_rest_of_the_quota(db):
    engine, run = db
    a, b = (KeyLimiter(engine, clock=Clock(), wall=Clock(NOON), nodes=lambda: 2) for _ in range(2))
    p = key(9, daily_quota=10)
    # Both nodes read 0 used of 10: each may spend half before it reads again, not the whole rest.
    assert admitted(a, p, 20) == 5 and admitted(b, p, 20) == 5
    with pytest.raises(TooManyRequestsError) as err:
        a.admit(p)
    assert err.value.code == "quota_exceeded" and err.value.retry_after_s == 1
    run(a.flush())
    run(b.flush())
    run(a.flush())
    assert admitted(a, p, 5) == 0 and admitted(b, p, 5) == 0  # 10 of 10, and no more
    assert run(rows(engine, "select count from key_usage where key_pk = 9")) == [(10,)]


def test_a_node_alone_gets_the_rest_of_the_quota_in_shrinking_shares(db):
    engine, run = db
    busy = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON), nodes=lambda: 2)  # the other node is idle
    p = key(10, daily_quota=20)
    rounds = []
    for _ in range(8):
        rounds.append(admitted(busy, p, 50))
        run(busy.flush())
    assert rounds == [10, 5, 3, 1, 1, 0, 0, 0]  # half of what is left each round, at least one: all 20, no more


def test_a_nodes_count_is_the_stored_total_plus_its_own_unwritten_requests(db):
    engine, run = db
    a = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON))
    other = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON))
    p = key(6, daily_quota=38)
    assert admitted(other, p, 30) == 30
    run(other.flush())
    assert admitted(a, p, 5) == 5
    run(a.flush())  # reads 35
    assert admitted(a, p, 2) == 2 and a.pending_today(6) == 2  # not written yet, counted here
    assert admitted(a, p, 5) == 1  # 35 stored + 2 + this one: the quota of 38


def test_a_node_without_its_database_goes_on_from_what_it_knows(db):
    engine, run = db
    lim = KeyLimiter(engine, clock=Clock(), wall=Clock(NOON))
    p = key(8, daily_quota=10)
    admitted(lim, p, 4)
    run(lim.flush())
    # The database stops answering: nothing listens on this port.
    down = create_engine(f"postgresql+asyncpg://flashml@127.0.0.1:{free_port()}/flashml")
    lim.engine = down
    try:
        assert admitted(lim, p, 3) == 3
        with pytest.raises(UNREACHABLE):
            run(lim.flush())
        assert lim.pending_today(8) == 3  # kept for the next flush
        assert admitted(lim, p, 5) == 3  # the quota still holds on the last total read plus the local counts
    finally:
        run(down.dispose())
    lim.engine = engine  # it answers again: the kept increments are written
    run(lim.flush())
    assert run(rows(engine, "select count from key_usage where key_pk = 8")) == [(10,)]
    assert lim.pending_today(8) == 0


def test_a_cached_key_keeps_working_while_the_database_does_not_answer(db, monkeypatch):
    engine, run = db
    svc = KeyService(engine)
    made = run(svc.create(name="k", role="inference", models=None, actor="t"))
    monkeypatch.setattr("flashml.auth.keys.CACHE_TTL_S", 0.0)  # every request past the cache reads the key again
    assert run(svc.authenticate(f"Bearer {made.token}")).name == "k"
    down = create_engine(f"postgresql+asyncpg://flashml@127.0.0.1:{free_port()}/flashml")
    svc.engine = down
    try:
        assert run(svc.authenticate(f"Bearer {made.token}")).name == "k"
        other = run(KeyService(engine).create(name="new", role="inference", models=None, actor="t"))
        with pytest.raises(UNREACHABLE):  # a key never seen here cannot be checked: no guess either way
            run(svc.authenticate(f"Bearer {other.token}"))
    finally:
        run(down.dispose())
