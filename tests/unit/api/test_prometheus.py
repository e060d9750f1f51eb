"""Who may read GET /metrics (setting metrics_access), decided from a request's address, its forwarded address
and its API key, with keys on a real SQLite database; the route itself is tested in tests/api and tests/e2e."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Request

from flashml.api.prometheus import check_reader, is_loopback
from flashml.auth.keys import KeyService
from flashml.db.engine import open_database
from flashml.errors import FlashMLError
from flashml.settings import load_settings

OUTSIDE = "203.0.113.9"


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.2", "::1", "[::1]", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, [OUTSIDE, "::ffff:203.0.113.9", "10.0.0.1", "testclient", "", "localhost"]))


def request(peer: str, forwarded_for: str | None = None, key: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers, "client": (peer, 40000),
                    "query_string": b"", "state": {}})


def status_of(tmp_path, setting: dict, peer: str, forwarded: str | None, role: str | None) -> int:
    """200 when the request may read /metrics, else the refusal's status (whose sentence names the setting)."""

    async def go():
        engine = await open_database(tmp_path / "keys.db")
        keys = KeyService(engine)
        key = None
        if role == "bad":
            key = "fml_not-a-real-key"
        elif role is not None:
            key = (await keys.create(name=f"{role} key", role=role, models=None, actor="t")).token
        settings = load_settings(cli={"data_dir": tmp_path, **setting}, env={})
        try:
            await check_reader(request(peer, forwarded, key), settings, keys)
            return 200
        except FlashMLError as exc:
            assert "metrics_access" in exc.message, exc.message
            return exc.status
        finally:
            await engine.dispose()

    return asyncio.run(go())


LOOPBACK, KEY, OPEN = {"metrics_access": "loopback"}, {"metrics_access": "key"}, {"metrics_access": "open"}
PROXIED = {"metrics_access": "loopback", "trusted_proxies": ("127.0.0.1",)}


@pytest.mark.parametrize(("setting", "peer", "forwarded", "role", "status"), [
    (LOOPBACK, "127.0.0.1", None, None, 200),  # on this machine: no key needed
    (LOOPBACK, "::1", None, None, 200),
    (LOOPBACK, OUTSIDE, None, None, 401),  # from elsewhere: a key
    (LOOPBACK, OUTSIDE, None, "bad", 401),
    (LOOPBACK, OUTSIDE, None, "inference", 403),  # below viewer: it may not list models and keys
    (LOOPBACK, OUTSIDE, None, "viewer", 200),
    (LOOPBACK, OUTSIDE, None, "admin", 200),
    (LOOPBACK, OUTSIDE, "127.0.0.1", None, 401),  # a forwarded address from an untrusted peer is not believed
    (PROXIED, "127.0.0.1", OUTSIDE, None, 401),  # a proxy on this machine does not make its clients local
    (PROXIED, "127.0.0.1", OUTSIDE, "viewer", 200),
    (PROXIED, "127.0.0.1", "127.0.0.1", None, 200),  # a local client through the local proxy
    (KEY, "127.0.0.1", None, None, 401),  # key: a key even on this machine
    (KEY, "127.0.0.1", None, "inference", 403),
    (KEY, "127.0.0.1", None, "viewer", 200),
    (OPEN, OUTSIDE, None, None, 200),  # open: anyone
])
def test_who_may_read_metrics(tmp_path, setting, peer, forwarded, role, status):
    assert status_of(tmp_path, setting, peer, forwarded, role) == status
