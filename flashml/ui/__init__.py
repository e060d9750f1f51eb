"""The web console: server-rendered pages (Jinja2 + htmx) over the same services as the JSON API."""

from flashml.ui.auth import AuthController
from flashml.ui.keys import KeysPageController
from flashml.ui.models import ModelsPageController
from flashml.ui.playground import PlaygroundController
from flashml.ui.upload import UploadPageController

CONTROLLERS: list[type] = [
    AuthController,
    KeysPageController,
    ModelsPageController,
    UploadPageController,
    PlaygroundController,
]
