"""Console sessions against a real database (SQLite and PostgreSQL): sign-in, expiry, the brake on guessing, CSRF,
redirects."""

import pytest

from flashml.auth.csrf import csrf_matches, new_csrf_token, require_csrf
from flashml.auth.login_brake import ACCOUNT_SLOW_AFTER, PAIR_MAX_FAILURES, SOURCE_FREE_FAILURES
from flashml.auth.principal import Principal, require_role
from flashml.auth.sign_ins import SignInService
from flashml.auth.users import UserService
from flashml.console.auth import safe_next
from flashml.db.engine import open_database
from flashml.errors import ForbiddenError, NotFoundError, TooManyRequestsError, UnauthorizedError
from tests.helpers.postgres import rows


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def env(db_target, runner):
    engine = runner.run(open_database(db_target))
    runner.run(UserService(engine).create("alice", "correct horse", role="maintainer", actor="t"))
    clock = Clock()
    yield SignInService(engine, lifetime_s=3600, clock=clock), clock, runner.run
    runner.run(engine.dispose())


def _audit(svc, run) -> list[str]:
    return [r[0] for r in run(rows(svc.engine, "select action from audit order by id"))]


def test_login_resolve_logout(env):
    svc, _, run = env
    token, user = run(svc.login("alice", "correct horse", "10.0.0.1"))
    assert user.name == "alice" and user.role == "maintainer" and len(user.csrf_token) > 30
    stored = run(rows(svc.engine, "select id, csrf_token from sessions"))
    assert len(stored) == 1 and stored[0][0] != token and token not in stored[0][0]  # only a hash is stored
    again = run(svc.resolve(token))
    assert again is not None and again.user_id == user.user_id and again.csrf_token == user.csrf_token
    principal = again.principal()
    assert principal.is_session and principal.can_manage_models and not principal.is_admin
    assert run(svc.resolve("not-a-session")) is None and run(svc.resolve(None)) is None
    assert run(svc.logout(token)) is True
    assert run(svc.resolve(token)) is None and run(svc.logout(token)) is False
    assert _audit(svc, run)[-2:] == ["user.login", "user.logout"]


def test_bad_password_and_unknown_user(env):
    svc, _, run = env
    with pytest.raises(UnauthorizedError) as e:
        run(svc.login("alice", "wrong password", "10.0.0.1"))
    assert e.value.code == "login_failed"
    with pytest.raises(UnauthorizedError) as e:
        run(svc.login("nobody", "correct horse", "10.0.0.1"))
    assert e.value.code == "login_failed" and "Wrong user name or password" in e.value.message
    assert _audit(svc, run)[-2:] == ["user.login_failed", "user.login_failed"]
    assert run(rows(svc.engine, "select count(*) from sessions")) == [(0,)]


def test_failed_logins_lock_the_address_for_that_account_only(env):
    svc, clock, run = env
    for _ in range(PAIR_MAX_FAILURES):
        with pytest.raises(UnauthorizedError):
            run(svc.login("alice", "wrong password", "10.0.0.1"))
        clock.now += 1
    with pytest.raises(TooManyRequestsError) as e:  # even the right password waits, from that address
        run(svc.login("alice", "correct horse", "10.0.0.1"))
    assert e.value.code == "login_rate_limited" and e.value.status == 429 and e.value.details["scope"] == "account"
    assert 0 < int(e.value.headers["Retry-After"]) <= 300
    assert run(svc.login("alice", "correct horse", "10.0.1.1"))[0]  # the owner elsewhere is not held up
    with pytest.raises(UnauthorizedError):  # nor is that address for other accounts
        run(svc.login("bob", "wrong password", "10.0.0.1"))
    clock.now += 300
    assert run(svc.login("alice", "correct horse", "10.0.0.1"))[0]


def test_an_unlock_clears_the_lock_even_from_another_process(env):
    svc, clock, run = env
    for _ in range(PAIR_MAX_FAILURES):
        with pytest.raises(UnauthorizedError):
            run(svc.login("alice", "wrong password", "10.0.0.1"))
    assert svc.brake.refused_sources("alice") == 1
    other = SignInService(svc.engine, clock=clock)  # the CLI: its own memory, the same database
    clock.now += 1
    assert run(other.unlock("alice", actor="cli")) == 0
    assert run(svc.login("alice", "correct horse", "10.0.0.1"))[0]
    assert _audit(svc, run)[-2:] == ["user.unlock", "user.login"]
    with pytest.raises(NotFoundError):
        run(svc.unlock("nobody", actor="t"))


def test_an_address_spraying_names_is_slowed_more_and_more(env):
    svc, clock, run = env
    for i in range(SOURCE_FREE_FAILURES):
        with pytest.raises(UnauthorizedError):
            run(svc.login(f"guess{i}", "wrong password", "10.9.9.9"))
    waits = []
    for i in range(3):
        with pytest.raises(TooManyRequestsError) as e:
            run(svc.login("alice", "correct horse", "10.9.9.9"))
        assert e.value.details["scope"] == "address"
        waits.append(e.value.retry_after_s)
        clock.now += e.value.retry_after_s
        with pytest.raises(UnauthorizedError):
            run(svc.login(f"more{i}", "wrong password", "10.9.9.9"))
    assert waits == [2, 4, 8]
    assert run(svc.login("alice", "correct horse", "10.0.0.2"))[0]  # another address is not held up


def test_many_addresses_at_one_account_get_one_try_each(env):
    svc, clock, run = env
    for i in range(ACCOUNT_SLOW_AFTER):
        with pytest.raises(UnauthorizedError):
            run(svc.login("alice", "wrong password", f"10.1.0.{i}"))
    with pytest.raises(TooManyRequestsError):
        run(svc.login("alice", "wrong password", "10.1.0.0"))
    assert run(svc.login("alice", "correct horse", "10.2.0.1"))[0]


def test_sessions_expire_unless_used(env):
    svc, clock, run = env
    token, _ = run(svc.login("alice", "correct horse", "10.0.0.1"))
    for _ in range(5):  # used every 50 minutes: the expiry slides forward, well past the first hour
        clock.now += 3000
        assert run(svc.resolve(token)) is not None
    clock.now += 3601
    assert run(svc.resolve(token)) is None


def test_csrf_compare():
    token = new_csrf_token()
    assert csrf_matches(token, token) and not csrf_matches(token, new_csrf_token())
    assert not csrf_matches(token, "") and not csrf_matches(token, None) and not csrf_matches("", "")
    require_csrf(token, token)
    with pytest.raises(ForbiddenError) as e:
        require_csrf(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert e.value.code == "csrf_failed" and e.value.status == 403


@pytest.mark.parametrize("target,expected", [
    ("/", "/"), ("/models?tab=keys", "/models?tab=keys"), ("", "/"), (None, "/"),
    ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("\\\\evil.example", "/"), ("javascript:alert(1)", "/"), ("models", "/"), ("/\tx", "/"),
    ("http:/evil", "/"),
])
def test_next_is_only_a_local_path(target, expected):
    assert safe_next(target) == expected


def test_roles():
    def p(role: str) -> Principal:
        return Principal(1, "k", "n", role, None, "u")

    assert p("admin").can("manage_users") and not p("maintainer").can("manage_users")
    assert p("maintainer").can_manage_models and p("maintainer").can("manage_inference_keys")
    assert p("viewer").can_read and not p("viewer").can_manage_models
    assert not p("inference").can_read and p("inference").may_infer("m") and not p("viewer").may_infer("m")
    with pytest.raises(ForbiddenError) as e:
        require_role(p("viewer"), "maintainer")
    assert e.value.code == "role_forbidden" and e.value.details["required_role"] == "maintainer"
    require_role(p("admin"), "maintainer")
