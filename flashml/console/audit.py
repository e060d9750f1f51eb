"""Console page for the audit log: GET /audit, the newest 200 events, optionally only one kind (?action=key.).

The same visibility rule as GET /api/v1/audit (flashml.db.audit.visible_events): admins read every event,
maintainers and viewers only the models' own trail (model. and version. events).
"""

from __future__ import annotations

import json
import time
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Redirect, Template

from flashml.auth.sign_ins import SignInService
from flashml.composition import Services
from flashml.console.pages import current_user, render, to_login
from flashml.db import audit

PAGE_SIZE = 200
PREFIXES = {"user.": "Users (user.)", "key.": "API keys (key.)", "model.": "Models (model.)",
            "version.": "Versions (version.)"}


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    return {**event, "at_text": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event["at"])),
            "detail_text": json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else ""}


class AuditPageController(Controller):
    include_in_schema = False

    @get("/audit")
    async def audit_page(self, request: Request, sessions: SignInService, services: Services,
                         action: str = "") -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        principal = user.principal()
        if not principal.has_role("viewer"):
            return render("audit.html", user, active="audit", status_code=403, allowed=False,
                          error=f"The audit log needs the viewer role (or stronger); you have the {user.role} role.")
        read_all = principal.can("read_audit")
        action = action.strip()[:64]
        prefixes: tuple[str, ...] | None = (action,) if action else None
        if not read_all:  # fetch only what may be shown, so the 200 are the newest visible ones
            prefixes = tuple(p for p in prefixes or audit.MODEL_ACTIONS if p.startswith(audit.MODEL_ACTIONS))
        events = [] if prefixes == () else await audit.list_events(services.engine, PAGE_SIZE, prefixes)
        events = audit.visible_events(events, read_all=read_all)
        choices = PREFIXES if read_all else {p: label for p, label in PREFIXES.items()
                                              if p.startswith(audit.MODEL_ACTIONS)}
        return render("audit.html", user, active="audit", allowed=True, events=[event_view(e) for e in events],
                      action=action, choices=choices, read_all=read_all, page_size=PAGE_SIZE)
