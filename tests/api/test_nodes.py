"""GET /api/v1/nodes in process: one node lists itself as the leader; a second node sharing the database (a
cluster node of its own, beating its heartbeat) appears beside it; viewers and stronger roles read it."""

from __future__ import annotations

import time

from flashml.cluster.node import ClusterNode
from flashml.settings import load_settings


def test_nodes_lists_the_live_nodes_and_the_leader(app, api):
    settings = app.services.settings
    r = api.get("/api/v1/nodes")
    assert r.status_code == 200
    (me,) = r.json()
    assert me["id"] == settings.node_name and me["address"] == f"{settings.host}:{settings.port}"
    assert me["leader"] is True and me["started_at"] <= me["seen_at"] <= time.time() + 1

    other = ClusterNode(app.services.engine, load_settings({"data_dir": str(app.data_dir), "node_id": "zz-other",
                                                            "port": 9009}, env={}))
    app.call(other.begin)
    app.call(other.start)  # beats once at once; the app's node keeps the lease
    try:
        listed = api.get("/api/v1/nodes").json()
    finally:
        app.call(other.stop)
    assert [(n["id"], n["address"], n["leader"]) for n in listed] == [
        (settings.node_name, f"{settings.host}:{settings.port}", True), ("zz-other", "127.0.0.1:9009", False)]
    assert [n["id"] for n in api.get("/api/v1/nodes").json()] == [settings.node_name]  # it left on stopping


def test_nodes_roles_and_openapi(app):
    viewer = app.create_key("nodes-viewer", "viewer")
    inference = app.create_key("nodes-inference", "inference")
    assert app.client().get("/api/v1/nodes", headers={"Authorization": f"Bearer {viewer}"}).status_code == 200
    r = app.client().get("/api/v1/nodes", headers={"Authorization": f"Bearer {inference}"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    assert app.client().get("/api/v1/nodes").status_code == 401
    doc = app.client().get("/schema/openapi.json").json()
    op = doc["paths"]["/api/v1/nodes"]["get"]
    assert {"200", "401", "403"} <= set(op["responses"])
    item = op["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    schema = doc["components"]["schemas"][item["$ref"].rsplit("/", 1)[-1]]
    assert set(schema["properties"]) == {"id", "address", "started_at", "seen_at", "leader"}
