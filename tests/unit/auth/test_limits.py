"""Per-key limits: token bucket, daily quota, Retry-After, key_usage on a real database (SQLite and PostgreSQL),
validation."""

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest

from flashml.auth.keys import KeyService
from flashml.auth.limits import KeyLimiter, effective_burst
from flashml.auth.principal import Principal
from flashml.db.engine import open_database
from flashml.errors import BadRequestError, NotFoundError, TooManyRequestsError
from tests.helpers.postgres import rows

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def key(pk: int = 1, **limits) -> Principal:
    return Principal(pk, f"k{pk}", f"key{pk}", "inference", None, "t", **limits)


def limiter(engine=None) -> tuple[KeyLimiter, Clock, Clock]:
    mono, wall = Clock(), Clock(NOON)
    return KeyLimiter(engine, clock=mono, wall=wall), mono, wall


def test_no_limits_admits_everything():
    lim, _, _ = limiter()
    p = key()
    for _ in range(1000):
        lim.admit(p)
    assert lim.pending_today(1) == 1000


def test_bucket_allows_burst_then_refills_at_rate():
    lim, mono, _ = limiter()
    p = key(rate_limit_per_s=2.0, burst=3)
    for _ in range(3):
        lim.admit(p)
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.status == 429 and err.value.code == "rate_limited"
    assert err.value.headers == {"Retry-After": "1"}  # 0.5 s to the next token, rounded up to 1
    mono.t += 0.5  # one token back
    lim.admit(p)
    with pytest.raises(TooManyRequestsError):
        lim.admit(p)
    mono.t += 100  # refill stops at the burst
    for _ in range(3):
        lim.admit(p)
    with pytest.raises(TooManyRequestsError):
        lim.admit(p)


def test_retry_after_is_time_to_next_token_rounded_up():
    lim, mono, _ = limiter()
    p = key(rate_limit_per_s=0.1, burst=1)
    lim.admit(p)
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.headers["Retry-After"] == "10"
    mono.t += 2.5
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.headers["Retry-After"] == "8"  # 7.5 s, rounded up
    assert err.value.to_body()["code"] == "rate_limited" and err.value.to_body()["error"]


def test_default_burst_is_ceil_rate_at_least_one():
    assert effective_burst(0.01, None) == 1
    assert effective_burst(2.5, None) == 3
    assert effective_burst(5, 2) == 2
    lim, _, _ = limiter()
    p = key(rate_limit_per_s=2.5)
    for _ in range(3):
        lim.admit(p)
    with pytest.raises(TooManyRequestsError):
        lim.admit(p)


def test_buckets_are_per_key_and_follow_changed_limits():
    lim, _, _ = limiter()
    a, b = key(1, rate_limit_per_s=0.01, burst=1), key(2, rate_limit_per_s=0.01, burst=1)
    lim.admit(a)
    lim.admit(b)  # b has its own bucket
    with pytest.raises(TooManyRequestsError):
        lim.admit(a)
    lim.admit(key(1))  # limit cleared: admitted at once
    with pytest.raises(TooManyRequestsError):
        lim.admit(key(1, rate_limit_per_s=0.01, burst=5))  # a bigger burst does not refill the bucket by itself


def test_quota_per_utc_day_rolls_over_at_midnight():
    lim, _, wall = limiter()
    p = key(daily_quota=2)
    lim.admit(p)
    lim.admit(p)
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.code == "quota_exceeded" and err.value.status == 429
    assert err.value.headers["Retry-After"] == str(12 * 3600)  # noon to midnight UTC
    assert err.value.details["resets_at"] == NOON + 12 * 3600
    wall.t = NOON + 12 * 3600 - 0.4
    with pytest.raises(TooManyRequestsError) as err:
        lim.admit(p)
    assert err.value.headers["Retry-After"] == "1"  # never below 1
    wall.t = NOON + 12 * 3600  # midnight: a new day
    assert lim.today == "2026-03-15"
    lim.admit(p)
    lim.admit(p)
    with pytest.raises(TooManyRequestsError):
        lim.admit(p)
    assert lim.pending_today(1) == 2


def test_refused_requests_do_not_count():
    lim, _, _ = limiter()
    p = key(rate_limit_per_s=0.01, burst=1, daily_quota=5)
    lim.admit(p)
    for _ in range(10):
        with pytest.raises(TooManyRequestsError) as err:
            lim.admit(p)
        assert err.value.code == "rate_limited"
    assert lim.pending_today(1) == 1


@pytest.fixture()
def db(db_target, runner):
    engine = runner.run(open_database(db_target))
    yield engine, runner.run
    runner.run(engine.dispose())


def test_flush_and_load_key_usage(db):
    engine, run = db
    lim, _, wall = limiter(engine)
    p = key(7, daily_quota=5)

    async def go():
        for _ in range(3):
            lim.admit(p)
        await lim.flush()
        lim.admit(p)
        await lim.flush()
        await lim.flush()  # nothing pending: no change
        wall.t += 86400
        lim.admit(p)
        await lim.flush()

    run(go())
    assert run(rows(engine, "select key_pk, day, count from key_usage order by day")) == \
        [(7, "2026-03-14", 4), (7, "2026-03-15", 1)]

    # A new process (a restart) on the first day: today's count comes back from key_usage.
    again, _, _ = limiter(engine)
    run(again.load())
    again.admit(p)
    with pytest.raises(TooManyRequestsError) as err:
        again.admit(p)
    assert err.value.code == "quota_exceeded"


def test_failed_flush_keeps_the_counts(db, monkeypatch):
    engine, run = db
    lim, _, _ = limiter(engine)
    lim.admit(key(3))

    async def broken(*_a, **_k):
        raise RuntimeError("database is locked")

    monkeypatch.setattr("flashml.db.keys.add_usage", broken)
    with pytest.raises(RuntimeError):
        run(lim.flush())
    monkeypatch.undo()
    lim.admit(key(3))
    run(lim.flush())
    assert run(rows(engine, "select count from key_usage")) == [(2,)]


def test_key_service_limits_round_trip(db):
    engine, run = db
    lim, _, _ = limiter(engine)
    svc = KeyService(engine, lim)

    async def go():
        k = await svc.create(name="lim", role="inference", models=None, actor="t", rate_limit_per_s=0.01, burst=2,
                             daily_quota=10, weight=3)
        assert (k.rate_limit_per_s, k.burst, k.daily_quota, k.weight, k.used_today) == \
            (0.01, 2, 10, 3, 0)
        header = f"Bearer {k.token}"
        p = await svc.authenticate(header)
        assert (p.rate_limit_per_s, p.burst, p.daily_quota, p.weight) == (0.01, 2, 10, 3)
        assert p.to_dict()["daily_quota"] == 10
        svc.admit(p)
        svc.admit(p)
        with pytest.raises(TooManyRequestsError):
            svc.admit(p)
        changed = await svc.set_limits(k.id, actor="t", rate_limit_per_s=None, daily_quota=2)
        assert changed.rate_limit_per_s is None and changed.burst == 2 and changed.daily_quota == 2
        assert changed.used_today == 2 and changed.weight == 3
        p = await svc.authenticate(header)  # the cache entry was dropped: the new limits apply at once
        assert p.rate_limit_per_s is None and p.daily_quota == 2
        with pytest.raises(TooManyRequestsError) as err:
            svc.admit(p)
        assert err.value.code == "quota_exceeded"
        await svc.set_limits(k.id, actor="t", daily_quota=None, weight=None)
        p = await svc.authenticate(header)
        svc.admit(p)
        await svc.flush()
        listed = {r.id: r for r in await svc.list()}
        assert listed[k.id].used_today == 3 and listed[k.id].weight == 1
        assert (await svc.get(k.id)).used_today == 3
        return k

    k = run(go())
    actions = [r[0] for r in run(rows(engine, "select action from audit order by id"))]
    assert actions == ["key.create", "key.limits", "key.limits"]
    assert run(rows(engine, "select count from key_usage where key_pk = :pk", pk=k.id)) == [(3,)]


@pytest.mark.parametrize("changes", [
    {"rate_limit_per_s": 0}, {"rate_limit_per_s": -1.5}, {"rate_limit_per_s": float("inf")},
    {"rate_limit_per_s": float("nan")}, {"rate_limit_per_s": True}, {"burst": 0}, {"burst": 1.5},
    {"daily_quota": 0}, {"daily_quota": -3}, {"weight": 0}, {"weight": 101}, {"colour": 1}, {},
])
def test_bad_limits_are_400(db, changes):
    engine, run = db
    svc = KeyService(engine)

    async def go():
        k = await svc.create(name="v", role="inference", models=None, actor="t")
        with pytest.raises(BadRequestError) as err:
            await svc.set_limits(k.id, actor="t", **changes)
        assert err.value.code == "bad_limits"

    run(go())


def test_bad_limits_on_create_and_unknown_key(db):
    engine, run = db
    svc = KeyService(engine)
    with pytest.raises(BadRequestError) as err:
        run(svc.create(name="v", role="inference", models=None, actor="t", burst=0))
    assert err.value.code == "bad_limits"
    with pytest.raises(NotFoundError):
        run(svc.set_limits(999, actor="t", burst=2))
    with pytest.raises(NotFoundError):
        run(svc.get(999))


def test_old_database_gets_the_new_columns(tmp_path):  # SQLite only: it builds an older release's SQLite file
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("create table api_keys (id integer primary key, key_id varchar(32) not null unique, "
                "secret_hash varchar(64) not null, name varchar(128) not null, role varchar(16) not null, "
                "models json, created_by varchar(64) not null, created_at float not null, last_used_at float, "
                "revoked_at float)")
    con.execute("insert into api_keys values (1, 'abc', 'h', 'old', 'inference', null, 't', 1.0, null, null)")
    con.commit()
    con.close()

    async def go():
        for _ in range(2):  # idempotent
            engine = await open_database(path)
            records = await KeyService(engine).list()
            await engine.dispose()
        return records

    (old,) = asyncio.run(go())
    assert (old.rate_limit_per_s, old.burst, old.daily_quota, old.weight, old.used_today) == \
        (None, None, None, 1, 0)
    cols = [r[1] for r in sqlite3.connect(path).execute("pragma table_info(api_keys)")]
    assert cols[-4:] == ["rate_limit_per_s", "burst", "daily_quota", "weight"]


def test_refusals_are_counted_per_key_name_and_reason():
    """GET /metrics's flashml_key_refusals: only refused requests count, under the key's name and why."""
    lim, mono, _ = limiter()
    fast, slow = key(1, rate_limit_per_s=1.0, burst=2), key(2, daily_quota=3)
    for p, admitted, tries in ((fast, 2, 5), (slow, 3, 4)):
        outcomes = []
        for _ in range(tries):
            try:
                lim.admit(p)
                outcomes.append(True)
            except TooManyRequestsError:
                outcomes.append(False)
        assert outcomes.count(True) == admitted
    assert lim.refusals == {("key1", "rate_limit"): 3, ("key2", "quota"): 1}
    mono.t += 10
    lim.admit(fast)  # an admitted request changes nothing
    assert lim.refusals == {("key1", "rate_limit"): 3, ("key2", "quota"): 1}
