"""The nginx sample for several nodes (packaging/cluster/nginx.conf) as a user installs it: nginx accepts it in its
conf.d, and, with its upstreams pointed at real FlashML servers on loopback and one address where no node answers,
passes the console's, the API's and inference's requests through and moves a request off the dead node.

HAProxy's sample is exercised in front of three nodes by tests/e2e/test_cluster.py; this is nginx's counterpart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, free_port

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "packaging/cluster/nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def main_config(folder: Path, site: str) -> Path:
    """What /etc/nginx/nginx.conf gives a file in conf.d (an http block), with this test's own pid, logs and
    temporary folders; ``site`` is included as conf.d/flashml.conf would be."""
    (folder / "conf.d").mkdir(parents=True)
    (folder / "conf.d" / "flashml.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                           "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # the workers read our temporary folders
    config = folder / "nginx.conf"
    config.write_text(f"{user}pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\nevents {{}}\n"
                      f"http {{\n    access_log off;\n{temp}\n    include {folder / 'conf.d'}/*.conf;\n}}\n")
    return config


def nginx(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NGINX, "-e", str(config.parent / "error.log"), "-c", str(config), *args],
                          capture_output=True, text=True, timeout=30)


def test_nginx_accepts_the_sample_as_shipped(tmp_path):
    checked = nginx(main_config(tmp_path, SAMPLE.read_text()), "-t")
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx on the sample, its three upstreams: two FlashML servers and a port where nothing listens."""
    root = tmp_path_factory.mktemp("nginx")
    nodes = [ServerProcess(root / f"node-{i}", *SERVER_FLAGS).start() for i in range(2)]
    port = free_port()
    site = SAMPLE.read_text()
    upstreams = iter([nodes[0].port, free_port(), nodes[1].port])  # the second: a node that is down
    site = re.sub(r"10\.0\.0\.1\d:8000", lambda _: f"127.0.0.1:{next(upstreams)}", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    config = main_config(root / "nginx", site)
    proc = subprocess.Popen([NGINX, "-e", str(config.parent / "error.log"), "-c", str(config), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v2/health/live", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for node in nodes:
            node.stop()


def test_requests_pass_through_the_sample_and_skip_the_node_that_is_down(balanced: str):
    # More requests than nodes: round robin reaches the dead one, and nginx moves each such request on.
    for _ in range(6):
        assert httpx.get(f"{balanced}/v2/health/ready", timeout=30).status_code == 200
    login = httpx.get(f"{balanced}/login", timeout=30)  # the console
    assert login.status_code == 200 and "flashml_csrf" in login.cookies
    for _ in range(3):  # inference's own location: answered by FlashML (no key: 401 in its JSON), never by nginx
        r = httpx.post(f"{balanced}/v2/models/absent/infer", json={"inputs": []}, timeout=30)
        assert r.status_code == 401 and r.json()["code"] == "missing_key", r.text
    r = httpx.get(f"{balanced}/api/v1/models", timeout=30)
    assert r.status_code == 401 and r.json()["code"] == "missing_key"
