"""htmx through Litestar's htmx plugin, in-process: every request is an HTMXRequest, a page asked for by htmx
answers its part (HTMXTemplate) and a full page otherwise, errors retarget the page's alert, and a session that
ends under an open page sends the whole page to sign-in (ClientRedirect)."""

from __future__ import annotations

import pytest
from litestar.plugins.htmx import HTMXRequest

from tests.helpers.console import console_app, sign_in

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver.local/"}


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    with console_app(tmp_path_factory.mktemp("console-htmx") / "data") as (app, client):
        yield app, client


def test_the_plugin_makes_every_request_an_htmx_request(console):
    app, _ = console
    assert app.request_class is HTMXRequest


@pytest.mark.parametrize(("path", "part"), [("/models?q=none", "No model name contains"),
                                            ("/jobs", 'id="no-jobs"'),
                                            ("/dashboard/live", 'id="dash-data"')])
def test_htmx_gets_the_part_and_a_browser_the_page(console, path, part):
    app, client = console
    sign_in(client, app, "htmx-viewer", "viewer")
    piece = client.get(path, headers=HTMX)
    assert piece.status_code == 200 and part in piece.text and "<html" not in piece.text
    assert piece.headers["cache-control"] == "no-store"
    if path != "/dashboard/live":  # the same address is the whole page without htmx
        page = client.get(path)
        assert page.status_code == 200 and "<html" in page.text and part in page.text


def test_a_failed_htmx_change_retargets_the_pages_alert(console):
    app, client = console
    token = sign_in(client, app, "htmx-admin", "admin")
    r = client.post("/keys/999999/revoke", headers={**HTMX, "X-CSRF-Token": token})
    assert r.status_code == 404 and "no API key" in r.text
    assert r.headers["hx-retarget"] == "#keys-alert" and r.headers["hx-reswap"] == "outerHTML"
    created = client.post("/keys", data={"name": "row", "role": "inference", "csrf_token": token})
    key_id = created.text.split('<tr id="key-', 1)[1].split('"', 1)[0]
    row = client.post(f"/keys/{key_id}/limits", data={"burst": "3"}, headers={**HTMX, "X-CSRF-Token": token})
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr") and "burst 3" in row.text


def test_an_ended_session_sends_the_open_page_to_sign_in(console):
    app, client = console
    sign_in(client, app, "htmx-leaver", "viewer")
    client.cookies.delete("flashml_session")
    r = client.get("/dashboard/live", headers={**HTMX, "HX-Current-URL": "http://testserver.local/?model=a"})
    assert r.status_code == 200 and "location" not in r.headers
    assert r.headers["hx-redirect"] == "/login?next=%2F%3Fmodel%3Da"
    r = client.get("/jobs", headers={**HTMX, "HX-Current-URL": "https://another.example/jobs"})
    assert r.headers["hx-redirect"] == "/login?next=%2F"  # another site's address is no way back
