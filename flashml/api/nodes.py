"""GET /api/v1/nodes: the FlashML nodes sharing this database (one, unless database_url is shared)."""

from __future__ import annotations

from litestar import Controller, get

from flashml.cluster.node import ClusterNode
from flashml.cluster.records import NodeRecord
from flashml.web.deps import Authenticated, Injected, provide


class NodesController(Controller):
    path = "/api/v1/nodes"
    tags = ["Nodes"]
    dependencies = provide("node")

    @get("/", summary="The live nodes sharing this database, and which one leads the background work")
    async def list_nodes(self, viewer: Authenticated, node: Injected[ClusterNode]) -> list[NodeRecord]:
        """Nodes whose heartbeat was seen in the last three sync intervals (setting sync_interval_s), by name;
        viewers and stronger roles."""
        return await node.listed()
