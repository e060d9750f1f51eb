"""The API keys console page, in process: sign-in redirect, CSRF refusal, roles, errors in words."""

from __future__ import annotations

import re

import pytest

from tests.helpers.server_process import login_token

PASSWORD = "keys page password 1"


def _client(app, name: str, role: str):
    app.create_user(name, PASSWORD, role)
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return client


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def _row_id(page_html: str, name: str) -> str:
    return re.search(r'<tr id="key-(\d+)"[^>]*>\s*<th scope="row">' + re.escape(name) + "<", page_html).group(1)


@pytest.fixture(scope="module")
def admin(app):
    client = _client(app, "ui-keys-admin", "admin")
    yield client
    client.close()


@pytest.fixture(scope="module")
def maintainer(app):
    client = _client(app, "ui-keys-maintainer", "maintainer")
    yield client
    client.close()


@pytest.fixture(scope="module")
def viewer(app):
    client = _client(app, "ui-keys-viewer", "viewer")
    yield client
    client.close()


def test_not_signed_in_goes_to_login(app):
    anon = app.client()
    r = anon.get("/keys")
    assert r.status_code in (302, 303) and r.headers["location"] == "/login?next=%2Fkeys"
    r = anon.post("/keys", data={"name": "x", "csrf_token": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fkeys"
    r = anon.post("/keys/1/revoke", data={"csrf_token": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_posts_without_the_right_csrf_token_are_refused(admin):
    page = admin.get("/keys")
    assert page.status_code == 200 and 'id="create-key"' in page.text
    assert page.headers["cache-control"] == "no-store"
    for data in ({"name": "no token"}, {"name": "forged", "csrf_token": "forged-token"}):
        # Refused by the console's one CSRF guard, as every console form is: a page for a browser, JSON otherwise.
        r = admin.post("/keys", data=data, headers={"Accept": "text/html"})
        assert r.status_code == 403 and 'role="alert"' in r.text and "security token" in r.text
        assert admin.post("/keys", data=data).json()["code"] == "csrf_failed"
    assert "no token" not in admin.get("/keys").text
    created = admin.post("/keys", data={"name": "csrf target", "role": "inference", "csrf_token": _csrf(page.text)})
    assert created.status_code == 200 and 'id="new-key"' in created.text
    key_id = _row_id(created.text, "csrf target")
    for data in ({}, {"csrf_token": "forged-token"}):
        assert admin.post(f"/keys/{key_id}/revoke", data=data).status_code == 403
        assert admin.post(f"/keys/{key_id}/limits", data={**data, "burst": "3"}).status_code == 403
    # The header works as the form field does (htmx sends it).
    r = admin.post(f"/keys/{key_id}/limits", data={"burst": "3", "rate_limit_per_s": "2"},
                   headers={"X-CSRF-Token": _csrf(page.text), "HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr") and "burst 3" in r.text


def test_errors_are_shown_in_words(admin):
    token = _csrf(admin.get("/keys").text)
    r = admin.post("/keys", data={"name": "bad limits", "rate_limit_per_s": "-1", "csrf_token": token})
    assert r.status_code == 400 and 'role="alert"' in r.text and "rate_limit_per_s" in r.text
    assert 'value="bad limits"' in r.text  # the form keeps what was typed
    r = admin.post("/keys", data={"name": "bad weight", "weight": "lots", "csrf_token": token})
    assert r.status_code == 400 and "must be a whole number" in r.text
    r = admin.post("/keys/999999/revoke", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#keys-alert" and "no API key" in r.text


def test_roles(maintainer, viewer):
    page = maintainer.get("/keys").text
    assert '<option value="inference"' in page and '<option value="admin"' not in page
    r = maintainer.post("/keys", data={"name": "sneaky admin", "role": "admin", "csrf_token": _csrf(page)})
    assert r.status_code == 403 and "admin role" in r.text
    seen = viewer.get("/keys")
    assert seen.status_code == 200 and 'id="create-key"' not in seen.text and 'id="read-only"' in seen.text
    r = viewer.post("/keys", data={"name": "viewer key", "csrf_token": _csrf(seen.text)})
    assert r.status_code == 403
