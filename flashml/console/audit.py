"""Console page for the audit log: GET /audit, the newest 200 events, optionally only one kind (?action=key.).

The same visibility rule as GET /api/v1/audit (flashml.db.audit.visible_events): admins read every event,
maintainers and viewers only the models' own trail (model. and version. events).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import ConsoleController, console_dependencies, render
from flashml.db import audit
from flashml.web.deps import Injected

PAGE_SIZE = 200
PREFIXES = {"user.": "Users (user.)", "key.": "API keys (key.)", "model.": "Models (model.)",
            "version.": "Versions (version.)"}


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    return {**event, "detail_text": json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else ""}


class AuditPageController(ConsoleController):
    dependencies = console_dependencies("engine")

    @get("/audit", guards=[needs_role("viewer")])
    async def audit_page(self, user: SignedIn, engine: Injected[AsyncEngine], action: FromQuery[str] = "") -> Template:
        principal = user.principal()
        read_all = principal.can("read_audit")
        action = action.strip()[:64]
        prefixes: tuple[str, ...] | None = (action,) if action else None
        if not read_all:  # fetch only what may be shown, so the 200 are the newest visible ones
            prefixes = tuple(p for p in prefixes or audit.MODEL_ACTIONS if p.startswith(audit.MODEL_ACTIONS))
        events = [] if prefixes == () else await audit.list_events(engine, PAGE_SIZE, prefixes)
        events = audit.visible_events(events, read_all=read_all)
        choices = PREFIXES if read_all else {p: label for p, label in PREFIXES.items()
                                              if p.startswith(audit.MODEL_ACTIONS)}
        return render("audit.html", user, active="audit", events=[event_view(e) for e in events],
                      action=action, choices=choices, read_all=read_all, page_size=PAGE_SIZE)
