"""The web console: server-rendered pages (Jinja2 + htmx) over the same services as the JSON API."""

from flashml.ui.auth import AuthController

CONTROLLERS: list[type] = [
    AuthController,
]
