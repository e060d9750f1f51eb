"""A model's page in sections (issue 24): each tab its own address and htmx part, two versions side by side, and
every dangerous change asks before it is made (confirm=yes, checked by the server)."""

from __future__ import annotations

import re
from contextlib import closing

import pytest

from tests.helpers.in_process import publish_offset_versions
from tests.helpers.server_process import login_token

MODEL = "tabbed"
LONELY = "lonely"


@pytest.fixture(scope="module")
def models(app, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("model-page")
    app.call(publish_offset_versions, app.services.registry, folder, (0, 100), model=MODEL)
    app.call(publish_offset_versions, app.services.registry, folder, (7,), model=LONELY)


@pytest.fixture(scope="module")
def maintainer(app, models):
    app.create_user("tabs-maintainer", "tabs password 1", "maintainer")
    client = app.client()
    r = client.post("/login", data={**login_token(client), "name": "tabs-maintainer",
                                    "password": "tabs password 1", "next": "/models"})
    assert r.status_code == 303, r.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/models").text).group(1)
    with closing(client):
        yield client, token


def _current_tab(html: str) -> str:
    return re.search(r'id="tab-(\w+)"\s+hx-get="[^"]+"[^>]*aria-current="page"', html).group(1)


def test_each_section_is_its_own_address(maintainer):
    client, _ = maintainer
    marks = {"overview": 'id="versions-glance"', "versions": 'id="version-1"', "traffic": 'id="alias-form"',
             "settings": 'id="config-form"', "predictions": 'id="prediction-log-form"', "try": 'id="snippet-curl"'}
    for tab, mark in marks.items():
        page = client.get(f"/models/{MODEL}", params={"tab": tab})
        assert page.status_code == 200 and _current_tab(page.text) == tab
        assert mark in page.text and all(m not in page.text for t, m in marks.items() if t != tab), tab
        assert 'id="served"' in page.text  # what serves shows on every tab
    plain = client.get(f"/models/{MODEL}")
    assert _current_tab(plain.text) == "overview" and 'id="perf-data"' in plain.text
    assert _current_tab(client.get(f"/models/{MODEL}", params={"tab": "nope"}).text) == "overview"
    # After a change the page opens on the section it was made from.
    assert _current_tab(client.get(f"/models/{MODEL}", params={"done": "config"}).text) == "settings"
    assert _current_tab(client.get(f"/models/{MODEL}", params={"done": "rollback"}).text) == "traffic"


def test_a_tab_click_with_htmx_gets_only_the_section(maintainer):
    client, _ = maintainer
    part = client.get(f"/models/{MODEL}", params={"tab": "settings"},
                      headers={"HX-Request": "true", "HX-Target": "model-tab"})
    assert part.status_code == 200 and "<html" not in part.text and 'id="config-form"' in part.text
    assert 'hx-swap-oob="true"' in part.text and _current_tab(part.text) == "settings"


def test_two_versions_side_by_side(maintainer):
    client, _ = maintainer
    for params in ({"tab": "versions", "compare": "1,2"}, [("tab", "versions"), ("compare", "2"), ("compare", "1")]):
        page = client.get(f"/models/{MODEL}", params=params).text
        for v in (1, 2):
            side = page.split(f'id="compare-v{v}"')[1].split("</article>")[0]
            assert 'class="signature"' in side and "Validation:" in side and f'id="perf-data-v{v}"' in side
        assert "Same signature." in page
    assert 'id="compare"' not in client.get(f"/models/{MODEL}", params={"tab": "versions", "compare": "1,9"}).text


def _asks(client, url: str, data: dict[str, str], *sentences: str) -> None:
    """The change's POST without confirm=yes: the confirm page, which posts the same fields again with it."""
    r = client.post(url, data=data)
    assert r.status_code == 200 and 'id="confirm-form"' in r.text, r.text[:300]
    form = r.text.split('id="confirm-form"')[1].split("</form>")[0]
    assert f'action="{url}"' in r.text and 'name="confirm" value="yes"' in form
    for key, value in data.items():
        assert f'name="{key}" value="{value}"' in form or key == "csrf_token"
    for sentence in sentences:
        assert sentence in r.text, r.text


def test_dangerous_changes_ask_first_and_change_nothing_until_confirmed(app, maintainer):
    client, token = maintainer
    registry = app.services.registry

    def state(model: str, version: int) -> str:
        return app.call(registry.get_model, model).to_dict()["versions"][version - 1]["state"]

    # Archiving the only serving version says what callers lose.
    url = f"/models/{LONELY}/versions/1/archive"
    _asks(client, url, {"csrf_token": token}, "the only version that serves lonely", "every call to lonely fails")
    assert state(LONELY, 1) == "ready"
    assert client.post(url, data={"csrf_token": token, "confirm": "yes"}).status_code == 303
    assert state(LONELY, 1) == "archived"
    # The newest ready version of two: calls without a version move to the other.
    _asks(client, f"/models/{MODEL}/versions/2/archive", {"csrf_token": token}, "once archived, they go to v1")
    assert state(MODEL, 2) == "ready"
    # Moving production, from "Serve this version" or the alias form.
    _asks(client, f"/models/{MODEL}/aliases", {"csrf_token": token, "alias": "production", "target": "1"},
          "go to v1 at once; today they reach v2")
    assert app.call(registry.get_model, MODEL).to_dict()["aliases"] == []
    # A bad target is refused before anything is asked.
    bad = client.post(f"/models/{MODEL}/aliases", data={"csrf_token": token, "alias": "production", "target": "x"})
    assert bad.status_code == 400 and 'id="confirm-form"' not in bad.text
    done = client.post(f"/models/{MODEL}/aliases", data={"csrf_token": token, "alias": "production",
                                                         "target": "1", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=serve")
    client.post(f"/models/{MODEL}/aliases", data={"csrf_token": token, "alias": "production", "target": "2",
                                                  "confirm": "yes"})
    # Rolling back and deleting an alias.
    _asks(client, f"/models/{MODEL}/aliases/production/rollback", {"csrf_token": token},
          "Calls without a version go to v1 at once instead of v2")
    _asks(client, f"/models/{MODEL}/aliases/production/delete", {"csrf_token": token},
          "then go to the newest ready version")
    assert app.call(registry.get_model, MODEL).to_dict()["aliases"][0]["versions"] == {"2": 100}
    # Deleting a version: the page's own form is the confirm step (a <details>); a bare POST still asks.
    _asks(client, f"/models/{LONELY}/versions/1/delete", {"csrf_token": token, "force": "on"}, "for good")
    assert state(LONELY, 1) == "archived"
    assert client.post(f"/models/{LONELY}/versions/1/delete",
                       data={"csrf_token": token, "confirm": "yes"}).status_code == 303
