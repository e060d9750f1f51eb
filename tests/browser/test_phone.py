"""Every console page at phone width (375 px), with the keyboard: fits the screen, every field labelled,
readable contrast, and Tab reaches the page's main action with a visible focus ring. Screenshots of each."""

from __future__ import annotations

import pytest

from tests.helpers import onnx_models
from tests.helpers.browser import assert_usable_at_phone_width, sign_in_as_new_user
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server

MODEL = "phone-add"


@pytest.fixture(scope="module")
def phone_model(server, tmp_path_factory, admin_key) -> str:
    import httpx

    path = onnx_models.add_model(tmp_path_factory.mktemp("phone") / "add.onnx")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120) as api:
        r = upload(api, MODEL, path)
        assert r.status_code == 201, r.text
    return MODEL


# Each page and its main action: (path, role, accessible name) of the control Tab must reach.
PAGES = [
    ("/", "button", "Show"),
    ("/models", "button", "Search"),
    (f"/models/{MODEL}", "button", "Save serving config"),
    (f"/models/{MODEL}/playground", "button", "Run"),
    ("/upload", "button", "Upload"),
    ("/keys", "button", "Create key"),
    ("/users", "button", "Create user"),
    ("/audit", "button", "Filter"),
]


def test_every_page_works_at_phone_width_with_the_keyboard(server, phone_model, page):  # noqa: F811
    page.goto(server.url + "/login")
    assert_usable_at_phone_width(page, page.get_by_role("button", name="Sign in"))
    page.shots("login")
    page.set_viewport_size({"width": 1200, "height": 800})
    sign_in_as_new_user(page, server, "phone-admin", "admin", "/")
    for path, role, name in PAGES:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert_usable_at_phone_width(page, page.get_by_role(role, name=name, exact=True))
        page.shots(path.strip("/").replace("/", "-") or "dashboard")
