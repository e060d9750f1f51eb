"""Console page for the audit log: GET /audit, the newest 200 events, optionally only one kind (?action=key.).

The same reader as GET /api/v1/audit (flashml.auth.audit.AuditService), so the same visibility rule: admins read
every event, maintainers and viewers only the models' own trail (model. and version. events). Each event's detail
shows as "key: value" lines (AuditEvent.detail_lines), not as JSON.
"""

from __future__ import annotations

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from flashml.auth.audit import AuditService
from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import ConsoleController, console_dependencies, render
from flashml.db.audit import MODEL_ACTIONS
from flashml.web.deps import Injected

PAGE_SIZE = 200
PREFIXES = {"user.": "Users (user.)", "key.": "API keys (key.)", "model.": "Models (model.)",
            "version.": "Versions (version.)"}


class AuditPageController(ConsoleController):
    dependencies = console_dependencies("audit")

    @get("/audit", guards=[needs_role("viewer")])
    async def audit_page(self, user: SignedIn, audit: Injected[AuditService], action: FromQuery[str] = "") -> Template:
        principal = user.principal()
        read_all = principal.can("read_audit")
        action = action.strip()[:64]
        events = await audit.events(principal, PAGE_SIZE, (action,) if action else None)
        choices = PREFIXES if read_all else {p: label for p, label in PREFIXES.items() if p.startswith(MODEL_ACTIONS)}
        return render("audit.html", user, active="audit", events=events, action=action, choices=choices,
                      read_all=read_all, page_size=PAGE_SIZE)
