"""The console in chromium through HAProxy in front of two nodes sharing one database (issue 27): the sign-in
page, its form and the pages after it are served by whichever node the load balancer picks, and signing in and
using the console works all the same. tests/e2e/test_cluster.py does the same with plain HTTP on three nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.cluster import NODE_HEADER, Cluster, cluster
from tests.helpers.postgres import PostgresCluster

pytestmark = pytest.mark.server
PASSWORD = "a console user's password"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), 2, postgres.new_database()) as c:
        c.cli("users", "create", "ada", "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n")
        yield c


def test_signing_in_and_using_the_console_through_the_load_balancer(page, two_nodes: Cluster):
    lb = two_nodes.lb_url
    documents: list[tuple[str, str, int]] = []  # (method and path, node, status) of each page load and form post
    page.on("response", lambda r: documents.append((f"{r.request.method} {r.url.removeprefix(lb)}",
                                                    r.headers.get(NODE_HEADER.lower(), ""), r.status))
            if r.request.resource_type == "document" else None)
    page.goto(f"{lb}/keys")
    assert page.url == f"{lb}/login?next=/keys" or page.url.startswith(f"{lb}/login")
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{lb}/keys")
    page.shots("keys")
    # A form of the console (a session's CSRF token, checked by whichever node gets the post): make a key.
    page.get_by_label("Name").fill("made through the balancer")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("made through the balancer").first.wait_for()
    for path in ("/models", "/jobs", "/"):
        page.goto(f"{lb}{path}")
        assert "/login" not in page.url, (path, documents)
    page.shots("home")
    nodes = {node for _, node, _ in documents}
    assert nodes == {"node1", "node2"}, documents  # both nodes served pages of one signed-in session
    assert all(status < 400 for *_, status in documents), documents
