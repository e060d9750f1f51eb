"""The web console: server-rendered pages (Jinja2 + htmx) over the same services as the JSON API."""

from flashml.console.account import AccountPageController
from flashml.console.audit import AuditPageController
from flashml.console.auth import AuthController
from flashml.console.dashboard import DashboardController
from flashml.console.drift import DriftPageController
from flashml.console.jobs import JobsPageController
from flashml.console.keys import KeysPageController
from flashml.console.models import ModelsPageController
from flashml.console.playground import PlaygroundController
from flashml.console.upload import UploadPageController
from flashml.console.users import UsersPageController

CONTROLLERS: list[type] = [
    AuthController,
    DashboardController,
    KeysPageController,
    ModelsPageController,
    DriftPageController,
    UploadPageController,
    PlaygroundController,
    UsersPageController,
    AuditPageController,
    AccountPageController,
    JobsPageController,
]
