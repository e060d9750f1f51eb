"""Signing in and out of the console in a real browser."""

from __future__ import annotations

import pytest

from tests.browser import browser, page  # noqa: F401 - pytest fixtures
from tests.server_process import flashml

pytestmark = pytest.mark.server


def test_sign_in_and_out(server, page):  # noqa: F811 - the fixture
    flashml("users", "create", "browser-viewer", "--role", "viewer", "--password-stdin", "--data-dir",
            str(server.data_dir), input="viewer password 1\n")
    page.goto(server.url + "/")
    assert page.url.endswith("/login")
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
