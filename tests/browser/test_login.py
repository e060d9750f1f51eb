"""Signing in and out of the console in a real browser."""

from __future__ import annotations

import pytest

from tests.helpers.server_process import flashml

pytestmark = pytest.mark.server


def test_sign_in_and_out(server, page):  # noqa: F811 - the fixture
    flashml("users", "create", "browser-viewer", "--role", "viewer", "--password-stdin", "--data-dir",
            str(server.data_dir), input="viewer password 1\n")
    page.goto(server.url + "/")
    assert page.url.endswith("/login")
    page.shots("login-form")
    # Login CSRF: a form whose token is not the page's (what a cross-site form would send) is refused.
    page.evaluate("() => { document.querySelector('input[name=csrf_token]').value = 'forged'; }")
    page.get_by_label("User name").fill("browser-viewer")
    page.get_by_label("Password").fill("viewer password 1")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 403
    assert "security token" in page.inner_text("#login-error")
    assert not any(c["name"] == "flashml_session" for c in page.context.cookies())
    page.shots("login-forged-csrf")
    page.get_by_label("User name").fill("browser-viewer")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.is_visible("#login-error")
    page.shots("login-refused")
    page.get_by_label("Password").fill("viewer password 1")
    page.get_by_role("button", name="Sign in").click()
    assert page.inner_text("#signed-in-user") == "browser-viewer"
    page.shots("signed-in")
    cookie = next(c for c in page.context.cookies() if c["name"] == "flashml_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # A viewer's session reads the API but may not change anything.
    assert page.request.get(server.url + "/api/v1/models").status == 200
    refused = page.request.delete(server.url + "/api/v1/models/anything")
    assert refused.status == 403 and refused.json()["code"] in ("role_forbidden", "csrf_failed")
    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/login")
    page.shots("signed-out")
    page.goto(server.url + "/")
    assert page.url.endswith("/login")
