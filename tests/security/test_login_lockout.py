"""Password guessing holds back the guessing address, not the account's owner (issue 22, item 11).

The real server trusts 127.0.0.1 as a proxy, so each test speaks for made-up client addresses through
X-Forwarded-For, the way a reverse proxy in front of FlashML reports them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml, login_token

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("lockout") / "data", *SERVER_FLAGS,
                        "--trusted-proxies", "127.0.0.1").start()
    yield srv
    srv.stop()


def _user(srv: ServerProcess, name: str, role: str = "viewer") -> str:
    flashml("users", "create", name, "--role", role, "--password-stdin", "--data-dir", str(srv.data_dir),
            input=f"{PASSWORD}\n")
    return name


def _client(srv: ServerProcess, address: str) -> httpx.Client:
    """A browser at ``address``, as the trusted proxy (127.0.0.1) reports it."""
    return httpx.Client(base_url=srv.url, headers={"X-Forwarded-For": address}, timeout=60)


def _login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", data={**login_token(client), "name": name, "password": password})


def _guess(client: httpx.Client, name: str, times: int) -> list[int]:
    return [_login(client, name, f"guess {i}").status_code for i in range(times)]


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "flashml_session" not in r.cookies


def test_guessing_from_one_address_does_not_lock_the_owner_out(served):
    name = _user(served, "lock-owner")
    with _client(served, "203.0.113.5") as attacker:
        assert _guess(attacker, name, 5) == [401] * 5
        refused = _login(attacker, name)  # even the right password: the search must not go on from here
        assert _refused(refused) and "ask an admin to unlock" in refused.text
    with _client(served, "198.51.100.7") as owner:
        r = _login(owner, name)
        assert r.status_code == 303 and "flashml_session" in owner.cookies, r.text
    with _client(served, "203.0.113.5") as attacker:
        assert _refused(_login(attacker, name))  # the owner's sign-in does not free the attacker


def test_one_address_spraying_many_accounts_is_slowed(served):
    name = _user(served, "spray-target")
    with _client(served, "203.0.113.20") as sprayer:
        assert _guess_many(sprayer, [f"sprayed-{i}" for i in range(10)]) == [401] * 10
        r = _login(sprayer, name)
        assert _refused(r) and "from your address" in r.text
        assert int(r.headers["retry-after"]) <= 2  # a slowdown that grows, not a lock
    with _client(served, "198.51.100.20") as owner:
        assert _login(owner, name).status_code == 303


def _guess_many(client: httpx.Client, names: list[str]) -> list[int]:
    return [_login(client, n, "Winter2026!").status_code for n in names]


def test_many_addresses_guessing_one_account_get_one_try_each(served):
    name = _user(served, "lock-distributed")
    for i in range(20):
        with _client(served, f"192.0.2.{i + 1}") as bot:
            assert _guess(bot, name, 1) == [401]
    with _client(served, "192.0.2.1") as bot:
        assert _refused(_login(bot, name, "another guess"))  # one failed try per address while under attack
    with _client(served, "198.51.100.30") as owner:
        assert _login(owner, name).status_code == 303  # an address that has not failed still signs in


def _sign_in_admin(srv: ServerProcess, client: httpx.Client) -> str:
    admin = _user(srv, f"unlock-admin-{client.headers['x-forwarded-for']}", "admin")
    assert _login(client, admin).status_code == 303
    return client.get("/api/v1/me").json()["csrf_token"]


def test_an_admin_unlocks_an_account_from_the_console(served):
    name = _user(served, "lock-console")
    with _client(served, "203.0.113.40") as attacker:
        _guess(attacker, name, 5)
        assert _refused(_login(attacker, name))
    with _client(served, "198.51.100.40") as admin:
        csrf = _sign_in_admin(served, admin)
        page = admin.get("/users")
        assert "refused for 1 address" in page.text and f'action="/users/{name}/unlock"' in page.text
        assert admin.post(f"/users/{name}/unlock", data={"csrf_token": "forged"}).status_code == 403
        r = admin.post(f"/users/{name}/unlock", data={"csrf_token": csrf})
        assert r.status_code == 200 and f"Unlocked &#39;{name}&#39;" in r.text, r.text
        assert f'action="/users/{name}/unlock"' not in r.text  # no failures left to clear
        assert admin.post("/users/nobody-here/unlock", data={"csrf_token": csrf}).status_code == 404
        events = [e for e in admin.get("/api/v1/audit").json() if e["action"] == "user.unlock"]
        assert events[0]["target"] == f"user:{name}" and events[0]["actor"].endswith("/console")
    with _client(served, "203.0.113.40") as after:
        assert _login(after, name).status_code == 303


def test_a_viewer_cannot_unlock(served):
    name = _user(served, "lock-viewer-tries")
    with _client(served, "198.51.100.50") as viewer:
        assert _login(viewer, name).status_code == 303
        csrf = viewer.get("/api/v1/me").json()["csrf_token"]
        assert viewer.post(f"/users/{name}/unlock", data={"csrf_token": csrf}).status_code == 403


def test_the_cli_unlocks_an_account_of_the_running_server(served):
    name = _user(served, "lock-cli")
    with _client(served, "203.0.113.60") as attacker:
        _guess(attacker, name, 5)
        assert _refused(_login(attacker, name))
    out = flashml("users", "unlock", name, "--data-dir", str(served.data_dir))
    assert f"Unlocked {name}" in out.stdout
    missing = flashml("users", "unlock", "nobody-here", "--data-dir", str(served.data_dir), check=False)
    assert missing.returncode != 0 and "no user named" in missing.stderr
    with _client(served, "203.0.113.60") as after:
        assert _login(after, name).status_code == 303
