"""Reading the audit log: the events a caller may see, newest first, as typed records.

The one reader for the JSON API (``GET /api/v1/audit``) and the console's audit page, so both apply the same
visibility rule: admins (``read_audit``) read every event, maintainers and
viewers only the models' own trail (``model.`` and ``version.`` events). Writing stays with each service that
acts (``flashml.db.audit.record``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.principal import Principal
from flashml.auth.records import AuditEvent
from flashml.db import audit

MAX_EVENTS = 1000  # the most one read returns


class AuditService:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @staticmethod
    def visible_prefixes(principal: Principal) -> tuple[str, ...] | None:
        """The action prefixes ``principal`` may read; None: every action."""
        return None if principal.can("read_audit") else audit.MODEL_ACTIONS

    async def events(self, principal: Principal, limit: int = 100,
                     prefixes: tuple[str, ...] | None = None) -> list[AuditEvent]:
        """The newest ``limit`` events ``principal`` may read (1 to MAX_EVENTS); with ``prefixes``, only actions
        starting with one of them. The query asks only for visible events, so a viewer's ``limit`` newest are the
        newest of the models' trail, not what is left of the newest of everything."""
        read_all = principal.can("read_audit")
        if not read_all:
            prefixes = tuple(p for p in prefixes or audit.MODEL_ACTIONS if p.startswith(audit.MODEL_ACTIONS))
            if not prefixes:  # asked only for actions it may not read
                return []
        rows = await audit.list_events(self.engine, min(max(limit, 1), MAX_EVENTS), prefixes)
        return [AuditEvent(**row) for row in rows]
