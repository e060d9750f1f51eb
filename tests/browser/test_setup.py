"""First run in a real browser: the setup link creates the admin and shows its API key once."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.browser import assert_usable_at_phone_width
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server


def test_first_run_setup_in_the_browser(tmp_path, page):  # noqa: F811 - the fixture
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        page.goto(srv.url + "/login")  # before setup, the sign-in page says where the first account comes from
        assert "setup link" in page.inner_text("#no-users")
        page.goto(srv.setup_url())
        assert_usable_at_phone_width(page, page.get_by_role("button", name="Create admin"))
        page.shots("setup-form")
        # A forged CSRF token is refused in words, and the form stays usable.
        page.evaluate("() => { document.querySelector('input[name=csrf_token]').value = 'forged'; }")
        page.get_by_label("User name").fill("root")
        page.get_by_label("Password (at least 8 characters)").fill("correct horse battery")
        page.get_by_label("Password again").fill("correct horse battery")
        page.get_by_role("button").click()
        assert "security token" in page.inner_text("[role=alert]")
        page.shots("setup-forged-csrf")
        page.get_by_label("User name").fill("root")
        page.get_by_label("Password (at least 8 characters)").fill("correct horse battery")
        page.get_by_label("Password again").fill("a different one")
        page.get_by_role("button").click()
        assert "passwords differ" in page.inner_text("main")
        page.shots("setup-mismatch")
        page.get_by_label("Password (at least 8 characters)").fill("correct horse battery")
        page.get_by_label("Password again").fill("correct horse battery")
        page.get_by_role("button").click()
        key = page.inner_text("#api-key").strip()
        page.shots("setup-done")
        page.get_by_role("link", name="Continue to the console").click()  # signed in already
        page.wait_for_url(srv.url + "/models")
        assert page.inner_text("#signed-in-user") == "root"
        page.goto(srv.url + "/login?next=/keys")  # signed in: straight on
        page.wait_for_url(srv.url + "/keys")
        me = httpx.get(f"{srv.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["key"]["user"] == "root"
        page.goto(srv.setup_url())  # the link works once
        assert "not valid" in page.inner_text("main")
    finally:
        srv.stop()
