"""The console's one guard layer, in-process, for every console route of the app's route table: a signed-out
request gets the one sign-in redirect, a change without the CSRF token gets 403, a role is checked by its guard,
and an error page keeps the signed-in nav."""

from __future__ import annotations

import re

import pytest

from flashml.console.guards import login_url
from tests.helpers.console import PRE_SESSION_PATHS, concrete, console_app, console_routes, sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Every field any console form reads, so that a route fails on its token and not on a missing field.
FORM = {"name": "n", "password": "p", "password_again": "p", "token": "t", "body": "{}", "role": "viewer"}


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    with console_app(tmp_path_factory.mktemp("console") / "data") as (app, client):
        yield app, client


def _pages(app) -> list[str]:
    """Every console page a signed-out visitor could open, except the sign-in and first-run pages."""
    return [concrete(path) for method, path, _ in console_routes(app)
            if method == "GET" and path not in PRE_SESSION_PATHS]


def _changes(app) -> list[str]:
    return [concrete(path) for method, path, _ in console_routes(app) if method in UNSAFE]


def test_the_route_table_has_the_console(console):
    app, _ = console
    pages, changes = _pages(app), _changes(app)
    assert {"/", "/models", "/models/m", "/keys", "/users", "/jobs", "/audit", "/upload"} <= set(pages)
    assert {"/keys", "/users", "/jobs", "/logout", "/login", "/setup", "/models/m/versions/1/archive"} <= set(changes)


def test_every_change_without_the_csrf_token_is_refused(console):
    app, client = console
    sign_in(client, app, "guard-admin", "admin")
    for path in _changes(app):
        for token in ({}, {"csrf_token": "forged"}):
            r = client.post(path, data={**FORM, **token})
            assert r.status_code == 403, (path, r.status_code, r.text[:200])
            if path not in PRE_SESSION_PATHS:  # the sign-in and setup forms answer on their own page
                assert r.json()["code"] == "csrf_failed", (path, r.text[:200])
        r = client.post(path, data=FORM, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403, (path, r.status_code)
    assert client.get("/").status_code == 200  # still signed in: /logout refused too


def test_the_token_in_the_header_or_the_form_is_accepted(console):
    app, client = console
    token = sign_in(client, app, "guard-keys", "admin")
    assert client.post("/keys", data={"name": "by form", "csrf_token": token}).status_code == 200
    r = client.post("/keys", data={"name": "by header"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and "by header" in r.text


def test_every_page_sends_a_signed_out_visitor_to_sign_in(console):
    app, client = console
    client.cookies.clear()
    for path in _pages(app):
        r = client.get(path)
        expected = "/login" if path == "/" else login_url(path)  # sign-in lands on / anyway
        assert r.status_code == 303 and r.headers["location"] == expected, (path, r.status_code)
    r = client.get("/models", params={"q": "a b"})
    assert r.headers["location"] == "/login?next=%2Fmodels%3Fq%3Da%2Bb"


def test_an_htmx_request_signed_out_sends_the_whole_page_to_sign_in(console):
    app, client = console
    client.cookies.clear()
    for path in _pages(app):
        r = client.get(path, headers={"HX-Request": "true", "HX-Current-URL": "http://testserver.local/jobs?x=1"})
        assert r.status_code == 200 and "location" not in r.headers, path
        assert r.headers["hx-redirect"] == "/login?next=%2Fjobs%3Fx%3D1", path
    r = client.get("/dashboard/live", headers={"HX-Request": "true"})  # no current URL: the console's home
    assert r.headers["hx-redirect"] == "/login?next=%2F"


def test_a_signed_out_change_comes_back_to_the_page_it_was_sent_from(console):
    app, client = console
    client.cookies.clear()
    for path in _changes(app):
        if path in PRE_SESSION_PATHS:
            continue
        r = client.post(path, data=FORM)
        if path == "/logout":  # nothing to sign out of: only the cookie is cleared
            assert r.status_code == 303 and r.headers["location"] == "/login"
            continue
        assert r.status_code == 303 and r.headers["location"] == login_url(path), path
        r = client.post(path, data=FORM, headers={"Referer": "http://testserver.local/models/m?done=x"})
        assert r.headers["location"] == "/login?next=%2Fmodels%2Fm%3Fdone%3Dx", path
    r = client.post("/keys", data=FORM, headers={"Referer": "https://evil.example/keys"})
    assert r.headers["location"] == "/login?next=%2Fkeys"  # another site's page is no way back


def test_roles_are_checked_by_their_guard(console):
    app, client = console
    token = sign_in(client, app, "guard-viewer", "viewer")
    for path in ("/users", "/upload"):
        r = client.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 403 and "role" in re.search(r'id="page-error">([^<]*)<', r.text).group(1)
        # The error page keeps the nav and the sign-out form of the signed-in user.
        assert 'id="signed-in-user">guard-viewer<' in r.text and f'value="{token}"' in r.text
    for path in ("/models/m/versions/1/archive", "/jobs", "/keys", "/users"):
        r = client.post(path, data={**FORM, "csrf_token": token})
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden", path
    assert client.get("/keys").status_code == 200 and client.get("/audit").status_code == 200  # viewers read


def test_every_console_controller_has_the_guards(console):
    """A new controller that forgets ConsoleController (or a handler that drops its guards) fails here."""
    app, _ = console
    for method, path, handler in console_routes(app):
        names = [g.__name__ for g in handler.resolve_guards()]
        if path in PRE_SESSION_PATHS:
            continue
        if path == "/logout":
            assert names == ["session_csrf"]
            continue
        assert names[:2] == ["signed_in", "session_csrf"], (method, path, names)
