"""An in-process FlashML for console tests: Litestar's TestClient over create_app on a temporary data folder, console
users signed in through the real sign-in form, and the console's routes read from the app's route table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from flashml.app import create_app
from flashml.settings import load_settings

BASE_URL = "http://testserver.local"
PASSWORD = "console test password 1"
# The routes that come before a session: their forms carry the signed pre-session token instead.
PRE_SESSION_PATHS = {"/login", "/setup", "/setup/"}
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@contextmanager
def console_app(data_dir: Path) -> Iterator[tuple[Litestar, TestClient]]:
    """The app (services open, as ``flashml serve`` runs them) and one client; it follows no redirects."""
    settings = load_settings(cli={"data_dir": data_dir, "device": "cpu", "autotune": False}, env={})
    app = create_app(settings)
    with TestClient(app, base_url=BASE_URL) as client:
        client.follow_redirects = False  # the tests read the redirects themselves
        yield app, client


def sign_in(client: TestClient, app: Litestar, name: str, role: str) -> str:
    """Make the user ``name`` with ``role`` (once) and sign ``client`` in as them; the session's CSRF token."""
    users = app.state.services.users
    if name not in {u["name"] for u in client.blocking_portal.call(users.list_users)}:
        client.blocking_portal.call(partial(users.create, name, PASSWORD, role=role, actor="test"))
    client.cookies.clear()
    client.get("/login")
    r = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": client.cookies["flashml_csrf"]})
    assert r.status_code == 303, r.text
    return client.get("/api/v1/me").json()["csrf_token"]


def console_routes(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """(method, route path, handler) of every console route, read from the app's route table."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.fn.__module__.startswith("flashml.console."):
                found += [(method, route.path, handler) for method in sorted(handler.http_methods)]
    assert found, "no console routes in the route table"
    return found


def concrete(path: str) -> str:
    """A route path with its parameters filled in: ``/models/{name:str}/versions/{version:int}`` becomes
    ``/models/m/versions/1``."""
    return _PARAM.sub(lambda m: "1" if m.group(2) == "int" else "m", path)
