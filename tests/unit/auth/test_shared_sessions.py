"""Sign-ins and keys on two nodes sharing one database (SQLite and PostgreSQL): the sign-in form's key is shared
through cluster_secrets, a session made on one node is read on the other, and what one node ends reaches the
other's cache through the change feed (the change rows the node writes, applied as the cluster node applies them).
"""

from __future__ import annotations

import pytest

from flashml.auth.keys import KeyService
from flashml.auth.login_brake import PAIR_MAX_FAILURES, WINDOW_S, FailureLog
from flashml.auth.sign_ins import SignInService
from flashml.auth.users import UserService
from flashml.db import changes
from flashml.db.engine import open_database
from flashml.errors import ForbiddenError, TooManyRequestsError, UnauthorizedError

PASSWORD = "correct horse battery"


@pytest.fixture()
def nodes(db_target, runner, tmp_path):
    """Two nodes' services, each on its own engine of the one database."""
    engines = [runner.run(open_database(db_target)) for _ in range(2)]
    sign_ins = [SignInService(e, node=f"node-{i}") for i, e in enumerate(engines)]
    users = [UserService(e, s) for e, s in zip(engines, sign_ins, strict=True)]
    keys = [KeyService(e, node=f"node-{i}") for i, e in enumerate(engines)]
    runner.run(users[0].create("alice", PASSWORD, role="viewer", actor="t"))
    yield sign_ins, users, keys, runner.run
    for e in engines:
        runner.run(e.dispose())


async def feed_to(service, engine, node: str, after: int = 0) -> int:
    """Apply the changes other nodes wrote (as flashml.cluster's reader does); how many."""
    rows = [c for c in await changes.since(engine, after) if c["node"] != node]
    for change in rows:
        await service.apply_change(change)
    return len(rows)


def test_the_sign_in_form_of_one_node_is_accepted_by_the_other(nodes, tmp_path, runner):
    sign_ins, _, _, run = nodes
    for s in sign_ins:
        run(s.start())
    token = sign_ins[0].pre_session.new_token()
    sign_ins[1].pre_session.require(token, token)  # node 1 checks node 0's signature: no error
    run(sign_ins[0].start())
    sign_ins[0].pre_session.require(token, token)  # a restart reads the same key
    # A node of another database has a key of its own.
    other = runner.run(open_database(tmp_path / "other.db"))
    try:
        stranger = SignInService(other)
        runner.run(stranger.start())
        with pytest.raises(ForbiddenError):
            stranger.pre_session.require(token, token)
    finally:
        runner.run(other.dispose())


def test_a_session_made_on_one_node_works_on_the_other_until_it_ends_there(nodes):
    sign_ins, _, _, run = nodes
    token, made = run(sign_ins[0].login("alice", PASSWORD, "127.0.0.1"))
    seen = run(sign_ins[1].resolve(token))  # not in node 1's cache: read from the database
    assert seen is not None and seen.name == "alice" and seen.csrf_token == made.csrf_token
    assert run(sign_ins[0].logout(token))
    assert run(sign_ins[1].resolve(token)) is not None  # still cached on node 1 ...
    assert run(feed_to(sign_ins[1], sign_ins[1].engine, "node-1")) == 1
    assert run(sign_ins[1].resolve(token)) is None  # ... until it applies node 0's change


@pytest.mark.parametrize("end", ["disable", "reset", "delete", "role"])
def test_what_ends_or_changes_sessions_on_one_node_reaches_the_other(nodes, end):
    sign_ins, users, _, run = nodes
    token, _ = run(sign_ins[1].login("alice", PASSWORD, "127.0.0.1"))
    assert run(sign_ins[1].resolve(token)) is not None  # cached on node 1
    before = run(changes.latest_id(sign_ins[0].engine))
    if end == "disable":
        run(users[0].set_disabled("alice", True, actor="t"))
    elif end == "reset":
        run(users[0].reset_password("alice", "another horse battery", actor="t"))
    elif end == "delete":
        run(users[0].create("bob", PASSWORD, role="admin", actor="t"))  # not the last admin
        run(users[0].delete("alice", actor="t"))
    else:
        run(users[0].set_role("alice", "maintainer", actor="t"))
    assert run(sign_ins[1].resolve(token)) is not None  # node 1 has not read the feed yet
    assert run(feed_to(sign_ins[1], sign_ins[1].engine, "node-1", before)) >= 1
    after = run(sign_ins[1].resolve(token))
    if end == "role":
        assert after is not None and after.role == "maintainer"
    else:
        assert after is None


def test_a_key_revoked_or_limited_on_one_node_is_read_again_on_the_other(nodes):
    _, _, keys, run = nodes
    made = run(keys[0].create(name="k", role="inference", models=None, actor="t"))
    bearer = f"Bearer {made.token}"
    assert run(keys[1].authenticate(bearer)).daily_quota is None  # cached on node 1
    run(keys[0].set_limits(made.id, actor="t", daily_quota=5))
    assert run(keys[1].authenticate(bearer)).daily_quota is None
    before = run(feed_to(keys[1], keys[1].engine, "node-1"))
    assert before == 1 and run(keys[1].authenticate(bearer)).daily_quota == 5
    mark = run(changes.latest_id(keys[0].engine))
    run(keys[0].revoke(made.id, actor="t"))
    assert run(keys[1].authenticate(bearer)).name == "k"
    assert run(feed_to(keys[1], keys[1].engine, "node-1", mark)) == 1
    with pytest.raises(UnauthorizedError) as err:
        run(keys[1].authenticate(bearer))
    assert err.value.code == "revoked_key"



async def sign_ins_to(service: SignInService, engine, node: str, after: int = 0) -> int:
    """Apply the sign-ins other nodes checked since change ``after`` (as the cluster node does, each once); the
    newest change id read."""
    rows = await changes.since(engine, after)
    for change in rows:
        if change["node"] != node and change["kind"] in (changes.SIGN_IN_FAILED, changes.SIGN_IN_FORGIVEN):
            await service.apply_sign_in(change)
    return max((c["id"] for c in rows), default=after)


def test_failed_sign_ins_on_one_node_count_on_the_other_and_a_right_password_forgives_them(nodes):
    """Guesses spread over two nodes add up on each (at the times they happened); the right password from an
    address forgives that address's guesses at the account on both nodes, not the address's count elsewhere."""
    sign_ins, _, _, run = nodes
    engine0, engine1 = sign_ins[0].engine, sign_ins[1].engine
    for i in range(PAIR_MAX_FAILURES - 1):
        with pytest.raises(UnauthorizedError):
            run(sign_ins[0].login("alice", f"wrong {i}", "10.0.0.5"))
    read1 = run(sign_ins_to(sign_ins[1], engine1, "node-1"))
    assert len(sign_ins[1].brake.pairs.recent("alice\n10.0.0.5")) == PAIR_MAX_FAILURES - 1
    with pytest.raises(UnauthorizedError):
        run(sign_ins[1].login("alice", "wrong again", "10.0.0.5"))  # the fifth, on the other node
    run(sign_ins_to(sign_ins[0], engine0, "node-0"))
    for s in sign_ins:  # both refuse that address at alice, the right password too
        with pytest.raises(TooManyRequestsError):
            run(s.login("alice", PASSWORD, "10.0.0.5"))
        run(s.login("alice", PASSWORD, "10.0.0.6"))  # another address is not held back

    # Three wrong and then the right password from one address on node 0: node 1 forgets the three as well.
    for i in range(3):
        with pytest.raises(UnauthorizedError):
            run(sign_ins[0].login("alice", f"typo {i}", "10.0.0.7"))
    run(sign_ins[0].login("alice", PASSWORD, "10.0.0.7"))
    run(sign_ins_to(sign_ins[1], engine1, "node-1", read1))
    assert sign_ins[1].brake.pairs.recent("alice\n10.0.0.7") == []
    assert len(sign_ins[1].brake.sources.recent("10.0.0.7")) == 3  # the address's own count stays


def test_a_failure_heard_late_is_counted_at_the_time_it_happened():
    now = [1000.0]
    log = FailureLog(3, WINDOW_S, lambda: now[0])
    log.fail("k")
    log.fail("k", at=990.0)  # another node's, older than the one counted here
    log.fail("k", at=995.0)
    log.fail("k", at=980.0)  # four, keep three: the oldest goes
    assert log.recent("k") == [990.0, 995.0, 1000.0]
    now[0] = 990.0 + WINDOW_S
    assert log.recent("k") == [995.0, 1000.0]  # out of the window by its own time, not when it was heard
