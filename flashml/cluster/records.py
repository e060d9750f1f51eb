"""What GET /api/v1/nodes answers."""

from __future__ import annotations

from flashml.records import Record


class NodeRecord(Record):
    """A node sharing this database: its name (setting node_id), the host:port it serves on, when it started and
    last beat its heartbeat (UNIX times), and whether it holds the leader lease (the store-wide background work)."""

    id: str
    address: str
    started_at: float
    seen_at: float
    leader: bool
