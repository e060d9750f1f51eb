"""The API keys page in a real browser: create (secret shown once), limit, revoke; a viewer only reads."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.server_process import flashml

pytestmark = pytest.mark.server

PASSWORD = "keys browser password"


def _user(server, name: str, role: str) -> None:
    flashml("users", "create", name, "--role", role, "--password-stdin", "--data-dir", str(server.data_dir),
            input=f"{PASSWORD}\n")


def _sign_in(page, server, name: str) -> None:  # noqa: F811 - the fixture
    page.goto(server.url + "/keys")
    assert "/login?next=%2Fkeys" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/keys")
    assert page.inner_text("#signed-in-user") == name


def _me(server, secret: str) -> int:
    return httpx.get(server.url + "/api/v1/me", headers={"Authorization": "Bearer " + secret}, timeout=30).status_code


def test_admin_creates_limits_and_revokes_a_key(server, page):  # noqa: F811 - the fixture
    _user(server, "keys-browser-admin", "admin")
    _sign_in(page, server, "keys-browser-admin")
    assert page.get_attribute('nav a[href="/keys"]', "aria-current") == "page"
    page.shots("keys-page")

    # A bad limit is refused in words and the form keeps what was typed.
    page.get_by_label("Name", exact=True).fill("browser inference")
    page.get_by_label("Rate limit (requests per second) (optional)").fill("0")
    page.get_by_role("button", name="Create key").click()
    assert "rate_limit_per_s" in page.inner_text("[role=alert]")
    assert page.get_by_label("Name", exact=True).input_value() == "browser inference"
    page.shots("bad-limit")

    page.get_by_label("Role").select_option("inference")
    page.get_by_label("Models (optional)").fill("alpha, beta")
    page.get_by_label("Rate limit (requests per second) (optional)").fill("5")
    page.get_by_label("Burst (optional)").fill("10")
    page.get_by_role("button", name="Create key").click()
    secret = page.inner_text("pre#new-key").strip()
    assert secret and page.is_visible("#copy-key")
    page.shots("secret-shown-once")
    page.click("#copy-key")
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    row = page.locator("tr", has=page.locator("th", has_text="browser inference"))
    assert "5/s" in row.inner_text() and "alpha, beta" in row.inner_text()
    assert _me(server, secret) == 200

    page.goto(server.url + "/keys")
    assert page.locator("#new-key").count() == 0 and secret not in page.content()
    page.shots("reloaded-no-secret")

    # Limits, through htmx: only the row changes.
    row = page.locator("tr", has=page.locator("th", has_text="browser inference"))
    row.get_by_text("Limits", exact=True).click()
    row.get_by_label("Daily quota (requests per UTC day)").fill("1000")
    row.get_by_label("Burst").fill("")
    row.get_by_role("button", name="Save limits of browser inference").click()
    row = page.locator("tr", has=page.locator("th", has_text="browser inference"))
    row.get_by_text("limits saved").wait_for()
    assert "of 1000 today" in row.inner_text() and "burst" not in row.locator(".key-limits").inner_text()
    page.shots("limits-saved")

    # A bad limit through htmx shows the alert, the row stays.
    row.get_by_text("Limits", exact=True).click()
    row.get_by_label("Weight (1 to 100)").fill("500")
    row.get_by_role("button", name="Save limits of browser inference").click()
    page.locator("#keys-error").wait_for()
    assert "weight" in page.inner_text("#keys-error")
    page.shots("limits-refused")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke browser inference").click()
    row = page.locator("tr", has=page.locator("th", has_text="browser inference"))
    row.locator(".key-state", has_text="revoked").wait_for()
    assert row.get_by_role("button", name="Revoke browser inference").count() == 0
    assert page.locator("#keys-error").count() == 0  # the old alert went away
    assert page.evaluate("document.activeElement.textContent") == "revoked: it no longer works"
    assert _me(server, secret) == 401
    page.shots("revoked")

    # At phone width the table scrolls inside its wrapper, not the page.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(server.url + "/keys")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("document.querySelector('.table-wrap').scrollWidth > "
                         "document.querySelector('.table-wrap').clientWidth")
    page.shots("phone")


def test_viewer_reads_only(server, page):  # noqa: F811 - the fixture
    _user(server, "keys-browser-viewer", "viewer")
    _sign_in(page, server, "keys-browser-viewer")
    assert page.locator("#create-key").count() == 0 and page.is_visible("#read-only")
    assert page.locator("button", has_text="Revoke").count() == 0
    page.shots("viewer")
    forged = page.request.post(server.url + "/keys", form={"name": "viewer key", "csrf_token": "forged"})
    assert forged.status == 403
    token = page.get_attribute("input[name=csrf_token]", "value")  # the sign-out form's
    refused = page.request.post(server.url + "/keys", form={"name": "viewer key", "csrf_token": token})
    assert refused.status == 403 and "viewer role" in refused.text()
