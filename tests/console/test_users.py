"""The Users page's actions (disable, enable, delete, reset password) and the change-my-password page, in process:
each action through the same service as the API, its refusals in words, CSRF and roles, sessions ended."""

from __future__ import annotations

import re
from html import unescape

import pytest

from flashml.db import audit
from tests.helpers.server_process import login_token

PASSWORD = "users page password 1"


def _sign_in(app, name: str, password: str = PASSWORD):
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": password})
    assert r.status_code == 303, r.text
    return client


def _sign_in_status(app, name: str, password: str) -> int:
    client = app.client()
    return client.post("/login", data={**login_token(client), "name": name, "password": password}).status_code


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def _alert(html: str) -> str:
    return unescape(re.search(r'role="alert"[^>]*>([^<]+)<', html).group(1))


def _notice(html: str) -> str:
    return unescape(re.search(r'role="status"[^>]*>([^<]+)<', html).group(1))


def _alive(client) -> bool:
    return client.get("/api/v1/me").status_code == 200


def _events(app, action: str) -> list[dict]:
    return [e for e in app.call(audit.list_events, app.services.engine, 1000) if e["action"] == action]


@pytest.fixture(scope="module")
def admin(app):
    app.create_user("ui-users-admin", PASSWORD, "admin")
    client = _sign_in(app, "ui-users-admin")
    yield client


def _post(client, path: str, **form):
    page = client.get("/users")
    return client.post(path, data={"csrf_token": _csrf(page.text), **form})


def test_the_page_shows_state_and_actions(app, admin):
    app.create_user("ui-shown", PASSWORD, "viewer")
    page = admin.get("/users")
    assert page.status_code == 200
    row = re.search(r'<tr id="user-ui-shown".*?</tr>', page.text, re.S).group(0)
    assert "enabled" in row and 'action="/users/ui-shown/disable"' in row
    assert 'action="/users/ui-shown/password"' in row and 'action="/users/ui-shown/delete"' in row
    assert re.search(r'<tr id="user-ui-users-admin".*?\(you\)', page.text, re.S)


def test_disable_and_enable_from_the_page(app, admin):
    app.create_user("ui-dis", PASSWORD, "maintainer")
    victim = _sign_in(app, "ui-dis")
    assert _alive(victim)
    r = _post(admin, "/users/ui-dis/disable")
    assert r.status_code == 200 and "Disabled 'ui-dis'" in _notice(r.text)
    assert re.search(r'<tr id="user-ui-dis" class="revoked">.*?disabled.*?/users/ui-dis/enable', r.text, re.S)
    assert not _alive(victim)
    assert _sign_in_status(app, "ui-dis", PASSWORD) == 401
    assert _events(app, "user.disable")[0]["actor"] == "ui-users-admin/console"
    r = _post(admin, "/users/ui-dis/enable")
    assert r.status_code == 200 and "Enabled 'ui-dis'" in _notice(r.text)
    assert _alive(_sign_in(app, "ui-dis"))
    assert _events(app, "user.enable")[0]["target"] == "user:ui-dis"


def test_reset_password_from_the_page(app, admin):
    app.create_user("ui-reset", PASSWORD, "viewer")
    victim = _sign_in(app, "ui-reset")
    r = _post(admin, "/users/ui-reset/password", password="fresh password 22", password_again="fresh password 2")
    assert r.status_code == 400 and "not the same" in _alert(r.text)
    r = _post(admin, "/users/ui-reset/password", password="short", password_again="short")
    assert r.status_code == 400 and "at least 8 characters" in _alert(r.text)
    assert _alive(victim)  # nothing changed yet
    r = _post(admin, "/users/ui-reset/password", password="fresh password 2", password_again="fresh password 2")
    assert r.status_code == 200 and "new password for 'ui-reset'" in _notice(r.text)
    assert "fresh password" not in r.text
    assert not _alive(victim)
    assert _sign_in_status(app, "ui-reset", "fresh password 2") == 303
    assert _events(app, "user.password_reset")[0]["actor"] == "ui-users-admin/console"


def test_delete_from_the_page(app, admin):
    app.create_user("ui-del", PASSWORD, "viewer")
    victim = _sign_in(app, "ui-del")
    r = _post(admin, "/users/ui-del/delete")
    assert r.status_code == 200 and "Deleted 'ui-del'" in _notice(r.text)
    assert 'id="user-ui-del"' not in r.text
    assert not _alive(victim)
    assert _events(app, "user.delete")[0]["target"] == "user:ui-del"
    r = _post(admin, "/users/ui-del/delete")
    assert r.status_code == 404 and "no user named 'ui-del'" in _alert(r.text)


def test_the_last_admin_is_kept_in_words(app, admin):
    # ui-users-admin is this app's only admin user.
    for action in ("disable", "delete"):
        r = _post(admin, f"/users/ui-users-admin/{action}")
        assert r.status_code == 409 and "only enabled admin" in _alert(r.text), action
    assert _alive(admin)


def test_unknown_users_and_forged_tokens(app, admin):
    for action in ("disable", "enable", "delete"):
        r = _post(admin, f"/users/ui-nobody/{action}")
        assert r.status_code == 404 and "no user named 'ui-nobody'" in _alert(r.text)
    r = _post(admin, "/users/ui-nobody/password", password=PASSWORD, password_again=PASSWORD)
    assert r.status_code == 404
    app.create_user("ui-forge", PASSWORD, "viewer")
    for data in ({}, {"csrf_token": "forged"}):
        for action in ("disable", "delete", "password"):
            r = admin.post(f"/users/ui-forge/{action}", data={**data, "password": "x" * 12, "password_again": "x" * 12})
            assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    assert _sign_in_status(app, "ui-forge", PASSWORD) == 303


def test_non_admins_and_signed_out_are_refused(app):
    app.create_user("ui-maint", PASSWORD, "maintainer")
    app.create_user("ui-victim", PASSWORD, "viewer")
    maint = _sign_in(app, "ui-maint")
    token = _csrf(maint.get("/account/password").text)
    for action in ("disable", "enable", "delete", "password"):
        r = maint.post(f"/users/ui-victim/{action}", data={"csrf_token": token, "password": "x" * 12,
                                                            "password_again": "x" * 12})
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden", action
        anon = app.client().post(f"/users/ui-victim/{action}", data={"csrf_token": "x"})
        assert anon.status_code == 303 and anon.headers["location"].startswith("/login")
    assert _sign_in_status(app, "ui-victim", PASSWORD) == 303


def test_a_user_changes_their_own_password(app):
    app.create_user("ui-self", PASSWORD, "viewer")
    me, other = _sign_in(app, "ui-self"), _sign_in(app, "ui-self")
    page = me.get("/account/password")
    assert page.status_code == 200 and 'id="change-password"' in page.text and 'aria-current="page"' in page.text
    token = _csrf(page.text)

    def change(current: str, new: str, again: str | None = None):
        return me.post("/account/password", data={"csrf_token": token, "current_password": current,
                                                   "new_password": new, "new_password_again": again or new})

    r = change(PASSWORD, "my new password 1", "my new password 2")
    assert r.status_code == 400 and "not the same" in _alert(r.text)
    r = change(PASSWORD, "short")
    assert r.status_code == 400 and "at least 8 characters" in _alert(r.text)
    r = change("not my password", "my new password 1")
    assert r.status_code == 401 and _alert(r.text) == "The current password is wrong."
    assert _alive(other)
    r = change(PASSWORD, "my new password 1")
    assert r.status_code == 200 and "password is changed" in _notice(r.text)
    assert _alive(me) and not _alive(other)  # this session goes on, the others end
    assert _sign_in_status(app, "ui-self", "my new password 1") == 303
    assert _events(app, "user.password_change")[0]["actor"] == "ui-self"
    forged = me.post("/account/password", data={"csrf_token": "forged", "current_password": "my new password 1",
                                                "new_password": "stolen password 1",
                                                "new_password_again": "stolen password 1"})
    assert forged.status_code == 403
    assert app.client().get("/account/password").headers["location"] == "/login?next=%2Faccount%2Fpassword"


def test_wrong_current_passwords_meet_the_brake_on_the_page(app):
    app.create_user("ui-guess", PASSWORD, "viewer")
    me = _sign_in(app, "ui-guess")
    token = _csrf(me.get("/account/password").text)
    form = {"csrf_token": token, "new_password": "taken over 123", "new_password_again": "taken over 123"}
    for _ in range(5):
        assert me.post("/account/password", data={**form, "current_password": "guess"}).status_code == 401
    r = me.post("/account/password", data={**form, "current_password": PASSWORD})
    assert r.status_code == 429 and "Too many failed sign-ins" in _alert(r.text)
    assert r.headers["retry-after"]
    assert _sign_in_status(app, "ui-guess", "taken over 123") == 429  # still the old one, and held back
