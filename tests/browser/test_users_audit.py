"""The Users and Audit pages in a real browser: an admin creates a user who can then sign in; the audit log
shows it and filters by kind; a viewer gets 403 at /users and sees only the models' events at /audit; an admin
disables, enables, resets and deletes a user whose open session ends each time; a user changes their own
password."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import assert_usable_at_phone_width, sign_in_as_new_user
from tests.helpers.server_process import login_token

pytestmark = pytest.mark.server

NEW_PASSWORD = "maintainer password 1"


def _actions(page) -> list[str]:  # noqa: F811 - the fixture
    return [a.strip() for a in page.locator("#audit-table .audit-action").all_inner_texts()]


def test_admin_creates_a_user_and_reads_the_audit_log(server, page):  # noqa: F811 - the fixture
    sign_in_as_new_user(page, server, "ua-admin", "admin", "/users")
    assert page.get_attribute('nav a[href="/users"]', "aria-current") == "page"
    assert "ua-admin" in page.inner_text("#users-table")
    page.shots("users-page")

    # Passwords that differ are refused in words; the name and role stay.
    page.get_by_label("Name", exact=True).fill("ua-maintainer")
    page.get_by_label("Role").select_option("maintainer")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Create user").click()
    assert "not the same" in page.inner_text("#users-error")
    assert page.get_by_label("Name", exact=True).input_value() == "ua-maintainer"
    assert page.get_by_label("Role").input_value() == "maintainer"
    page.shots("password-mismatch")

    # A short password (the browser's minlength is bypassed to reach the server's check).
    page.evaluate("document.querySelectorAll('input[type=password]').forEach(i => i.removeAttribute('minlength'))")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Create user").click()
    assert "at least 8 characters" in page.inner_text("#users-error")
    page.shots("short-password")

    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    assert "ua-maintainer" in page.inner_text("#users-notice")
    row = page.locator("#users-table tr", has=page.locator("th", has_text="ua-maintainer"))
    assert "maintainer" in row.inner_text() and "UTC" in row.inner_text()
    page.shots("user-created")

    # The same name again is refused in words.
    page.get_by_label("Name", exact=True).fill("ua-maintainer")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    assert "already exists" in page.inner_text("#users-error")
    page.shots("duplicate-name")

    # The new user signs in.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/login", data={**login_token(client), "name": "ua-maintainer", "password": NEW_PASSWORD})
    assert r.status_code == 303

    # The audit log: the creation and the sign-ins, then only the user. events, then only key. events.
    page.click('nav a[href="/audit"]')
    page.wait_for_url(server.url + "/audit")
    assert page.get_attribute('nav a[href="/audit"]', "aria-current") == "page"
    table = page.inner_text("#audit-table")
    assert "user.create" in table and "user.login" in table and "user:ua-maintainer" in table
    assert "role: maintainer" in table and '{"' not in table  # details read as "key: value", not JSON
    page.shots("audit-all")
    page.get_by_label("Show").select_option("user.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(server.url + "/audit?action=user.")
    actions = _actions(page)
    assert actions and all(a.startswith("user.") for a in actions) and "user.create" in actions
    page.shots("audit-users")
    page.goto(server.url + "/audit?action=key.")
    assert all(a.startswith("key.") for a in _actions(page))
    assert page.get_by_label("Show").input_value() == "key."
    page.shots("audit-keys")


def test_viewer_is_refused_users_and_sees_model_events_only(server, page, api, tmp_path):  # noqa: F811
    onnx_models.add_model(tmp_path / "ok.onnx")
    assert api.post("/api/v1/models/ua-model/versions", content=(tmp_path / "ok.onnx").read_bytes()
                    ).status_code == 201
    sign_in_as_new_user(page, server, "ua-viewer", "viewer", "/audit")
    assert page.locator('nav a[href="/users"]').count() == 0
    actions = _actions(page)
    assert "version.upload" in actions
    assert all(a.startswith(("model.", "version.")) for a in actions)
    assert page.is_visible("#audit-scope")
    page.shots("viewer-audit")
    page.goto(server.url + "/audit?action=user.")
    assert page.locator("#audit-table").count() == 0 and page.is_visible("#no-events")
    page.shots("viewer-audit-users-filter")

    response = page.goto(server.url + "/users")
    assert response.status == 403
    assert "admin role" in page.inner_text("#page-error") and page.locator("#create-user").count() == 0
    page.shots("viewer-users-403")

    token = page.get_attribute("input[name=csrf_token]", "value")  # the sign-out form's
    form = {"name": "ua-sneaky", "role": "admin", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    assert page.request.post(server.url + "/users", form={**form, "csrf_token": "forged"}).status == 403
    refused = page.request.post(server.url + "/users", form={**form, "csrf_token": token})
    assert refused.status == 403 and "admin role" in refused.text()


def test_forged_csrf_is_refused_for_an_admin(server, page):  # noqa: F811 - the fixture
    sign_in_as_new_user(page, server, "ua-admin-2", "admin", "/users")
    form = {"name": "ua-forged", "role": "viewer", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    forged = page.request.post(server.url + "/users", form={**form, "csrf_token": "forged"})
    assert forged.status == 403 and "security token" in forged.text()
    page.goto(server.url + "/users")
    assert "ua-forged" not in page.inner_text("#users-table")
    page.shots("forged-refused")


def test_signed_out_goes_to_login(server):
    for path in ("/users", "/audit?action=key."):
        r = httpx.get(server.url + path, timeout=30)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login?next=%2F")


def _victim_signs_in(browser, server, name: str, password: str):
    """A second browser (its own cookies) signed in as ``name``: the user an admin acts on."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    victim = context.new_page()
    victim.set_default_timeout(20_000)
    victim.goto(server.url + "/login")
    victim.get_by_label("User name").fill(name)
    victim.get_by_label("Password").fill(password)
    victim.get_by_role("button", name="Sign in").click()
    victim.wait_for_url(server.url + "/")
    return victim


def _signed_out(victim, server) -> bool:
    victim.goto(server.url + "/models")
    return "/login" in victim.url


def test_admin_disables_enables_resets_and_deletes_a_user(server, page, browser, api):  # noqa: F811
    assert api.post("/api/v1/users", json={"name": "ua-target", "password": NEW_PASSWORD,
                                           "role": "maintainer"}).status_code == 201
    victim = _victim_signs_in(browser, server, "ua-target", NEW_PASSWORD)
    sign_in_as_new_user(page, server, "ua-admin-3", "admin", "/users")
    row = page.locator("#user-ua-target")
    assert "enabled" in row.locator(".user-state").inner_text()
    page.shots("actions")

    # Disable: the target's open session ends at once.
    row.get_by_role("button", name="Disable ua-target").click()
    assert "Disabled 'ua-target'" in page.inner_text("#users-notice")
    assert "disabled" in row.locator(".user-state").inner_text()
    page.shots("disabled")
    assert _signed_out(victim, server)
    victim.get_by_label("User name").fill("ua-target")
    victim.get_by_label("Password").fill(NEW_PASSWORD)
    victim.get_by_role("button", name="Sign in").click()
    assert "Wrong user name or password" in victim.inner_text("[role=alert]")

    # Enable, sign in again; then a password reset ends that session too.
    row.get_by_role("button", name="Enable ua-target").click()
    assert "Enabled 'ua-target'" in page.inner_text("#users-notice")
    victim.context.close()
    victim = _victim_signs_in(browser, server, "ua-target", NEW_PASSWORD)
    row.locator("summary", has_text="Reset password").click()
    row.get_by_label("New password for ua-target", exact=True).fill("reset by admin 1")
    row.get_by_label("Repeat the new password for ua-target", exact=True).fill("reset by admin 2")
    row.get_by_role("button", name="Set the password of ua-target").click()
    assert "not the same" in page.inner_text("#users-error")
    row.locator("summary", has_text="Reset password").click()
    row.get_by_label("New password for ua-target", exact=True).fill("reset by admin 1")
    row.get_by_label("Repeat the new password for ua-target", exact=True).fill("reset by admin 1")
    page.shots("reset-form")
    row.get_by_role("button", name="Set the password of ua-target").click()
    assert "new password for 'ua-target'" in page.inner_text("#users-notice")
    assert _signed_out(victim, server)
    victim.context.close()
    victim = _victim_signs_in(browser, server, "ua-target", "reset by admin 1")

    # Delete asks first (a second button inside), then the row is gone and the session with it.
    row.locator("summary", has_text="Delete").click()
    page.shots("delete-ask")
    row.get_by_role("button", name="Delete ua-target for good").click()
    assert "Deleted 'ua-target'" in page.inner_text("#users-notice")
    assert page.locator("#user-ua-target").count() == 0
    assert _signed_out(victim, server)
    victim.context.close()
    page.shots("deleted")

    page.goto(server.url + "/audit?action=user.")
    actions = _actions(page)
    for action in ("user.disable", "user.enable", "user.password_reset", "user.delete"):
        assert action in actions, action
    assert "ua-admin-3/console" in page.inner_text("#audit-table")


def test_a_user_changes_their_own_password(server, page):  # noqa: F811 - the fixture
    sign_in_as_new_user(page, server, "ua-self", "viewer", "/")
    page.click('header a[href="/account/password"]')
    page.wait_for_url(server.url + "/account/password")
    assert page.get_attribute('header a[href="/account/password"]', "aria-current") == "page"
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("my own new password")
    page.get_by_label("New password again").fill("my own new password")
    page.get_by_role("button", name="Change password").click()
    assert page.inner_text("#account-error") == "The current password is wrong."
    page.shots("wrong-current")
    page.get_by_label("Current password").fill("ua-self password 1")
    page.get_by_label("New password", exact=True).fill("my own new password")
    page.get_by_label("New password again").fill("my own new password")
    page.get_by_role("button", name="Change password").click()
    assert "password is changed" in page.inner_text("#account-notice")
    page.shots("changed")
    assert_usable_at_phone_width(page, page.get_by_role("button", name="Change password"))
    page.shots("phone")
    # This session goes on; the new password signs in, the old one no longer does.
    page.goto(server.url + "/models")
    assert page.url == server.url + "/models"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        old = client.post("/login", data={**login_token(client), "name": "ua-self", "password": "ua-self password 1"})
        new = client.post("/login", data={**login_token(client), "name": "ua-self",
                                          "password": "my own new password"})
    assert old.status_code == 401 and new.status_code == 303
