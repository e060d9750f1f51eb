"""The web console: server-rendered pages (Jinja2 + htmx) over the same services as the JSON API."""

from flashml.ui.audit import AuditPageController
from flashml.ui.auth import AuthController
from flashml.ui.dashboard import DashboardController
from flashml.ui.jobs import JobsPageController
from flashml.ui.keys import KeysPageController
from flashml.ui.models import ModelsPageController
from flashml.ui.playground import PlaygroundController
from flashml.ui.upload import UploadPageController
from flashml.ui.users import UsersPageController

CONTROLLERS: list[type] = [
    AuthController,
    DashboardController,
    KeysPageController,
    ModelsPageController,
    UploadPageController,
    PlaygroundController,
    UsersPageController,
    AuditPageController,
    JobsPageController,
]
