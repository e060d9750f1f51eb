"""The web console: server-rendered pages (Jinja2 + htmx) over the same services as the JSON API."""

from flashml.ui.auth import AuthController
from flashml.ui.keys import KeysPageController
from flashml.ui.models import ModelsPageController

CONTROLLERS: list[type] = [
    AuthController,
    KeysPageController,
    ModelsPageController,
]
