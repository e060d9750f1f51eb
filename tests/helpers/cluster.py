"""Several FlashML nodes as one system on loopback, as docs/operations.md (Several nodes) sets them up: N
`flashml serve` processes, each with its own data_dir, sharing one PostgreSQL database (database_url) and one S3
bucket (moto's server in a process of its own), behind Debian's HAProxy started with a generated config
(round-robin, a health check on /v2/health/ready every 250 ms, requests that cannot reach a node sent to another).

    with cluster(root, nodes=3) as c:       # or Cluster(...).start() / .stop()
        c.lb_url                             # HAProxy's frontend
        c.nodes[0].url                       # one node, directly
        c.kill(0); c.restart(0)              # kill -9 (its whole process group) and start again on its port

Every answer through HAProxy names the node that served it in the ``X-FlashML-Node`` header (``served_by``).
``stop`` ends every process the harness started (nodes with their validation subprocesses, HAProxy, moto) and
the PostgreSQL cluster when the harness made it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from tests.helpers.postgres import PostgresCluster
from tests.helpers.s3_server import ACCESS, SECRET, MotoProcess
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BUCKET = "flashml-cluster"
NODE_HEADER = "X-FlashML-Node"
# How often HAProxy asks each node /v2/health/ready, and after how many failed checks in a row a node is out:
# a node killed with kill -9 refuses connections at once, so it is out within about CHECK_S * FALL.
CHECK_S, FALL, RISE = 0.25, 2, 2


def haproxy_config(port: int, servers: list[tuple[str, int]], stats_socket: Path, log: bool = True) -> str:
    """The test's HAProxy config: packaging/cluster/haproxy.cfg's choices, on loopback ports, with faster checks,
    an admin socket for the harness and the serving node's name in a response header. ``log``: a line per request
    (a benchmark turns it off)."""
    inter_ms = int(CHECK_S * 1000)
    lines = [
        "global",
        "    maxconn 4096",
        f"    stats socket {stats_socket} mode 600 level admin",
        *(["    log stdout format raw local0"] if log else []),
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 1s",
        "    timeout client 120s",
        "    timeout server 120s",
        "    timeout http-request 15s",
        # A refused connection (a node killed between two health checks) is tried again on another node: it
        # never reached the node, so even a POST is safe to send elsewhere. An inference request whose node
        # closed the connection without answering (killed as the request arrived) is sent again too, where
        # HAProxy can: it changes nothing, so answering it twice is harmless. Other requests (uploads, jobs,
        # keys) are only retried when they could not connect.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "",
        "frontend flashml",
        f"    bind 127.0.0.1:{port}",
        "    option forwardfor",
        "    acl inference path_reg ^/v2/models/[^/]+(/versions/[^/]+)?/infer$",
        "    http-request disable-l7-retry unless METH_POST inference",
        "    default_backend nodes",
        "",
        "backend nodes",
        "    balance roundrobin",
        # The whole request (up to tune.bufsize, 16 KiB) before a node gets it, so that it can be sent again.
        "    option http-buffer-request",
        "    option httpchk GET /v2/health/ready",
        "    http-check expect status 200",
        f"    http-response set-header {NODE_HEADER} %s",
        f"    default-server check inter {inter_ms}ms fastinter {inter_ms}ms downinter {inter_ms}ms "
        f"fall {FALL} rise {RISE}",
        *(f"    server {name} 127.0.0.1:{p}" for name, p in servers),
        "",
    ]
    return "\n".join(lines)


class HAProxy:
    """Debian's haproxy in the foreground (-db) with a generated config, and its admin socket."""

    def __init__(self, folder: Path, servers: list[tuple[str, int]], log: bool = True) -> None:
        self.folder = folder
        self.log_requests = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket = folder / "haproxy.sock"
        self.config_path = folder / "haproxy.cfg"
        self.log_path = folder / "haproxy.log"
        self.servers = servers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> HAProxy:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(haproxy_config(self.port, self.servers, self.socket, self.log_requests))
        checked = subprocess.run([HAPROXY, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        assert checked.returncode == 0, f"haproxy -c refused the config:\n{checked.stdout}{checked.stderr}"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config_path)], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.socket.exists() or not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            self.command("show info")
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def command(self, line: str) -> str:
        """One command on the admin socket (``show stat``, ``disable server nodes/node1``); its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Each server's state as HAProxy sees it: UP, DOWN, "UP 1/2" (rising), "DOWN 1/2" (falling), ..."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "nodes" and r["svname"] != "BACKEND"}

    def wait_state(self, name: str, state: str, timeout: float = 30.0) -> float:
        """Wait until HAProxy reports ``name`` in ``state`` (UP or DOWN); the seconds it took."""
        began = time.monotonic()
        while (now := self.states().get(name)) != state:
            if time.monotonic() - began > timeout:
                raise AssertionError(f"haproxy still says {name} is {now!r}, not {state}, after {timeout} s")
            time.sleep(0.02)
        return time.monotonic() - began

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            self._log.close()
            self.proc = None


class Node(ServerProcess):
    """One FlashML node: `flashml serve` on a port of its own that stays the same across restarts (HAProxy's
    config names it), with its own data_dir and the cluster's database and store."""

    def __init__(self, name: str, data_dir: Path, port: int, database_url: str, s3_endpoint: str,
                 *extra: str) -> None:
        super().__init__(data_dir, *SERVER_FLAGS, "--storage", "s3", "--s3-endpoint", s3_endpoint, "--s3-bucket",
                         BUCKET, "--no-s3-secure", "--node-id", name, "--trusted-proxies", "127.0.0.1", *extra,
                         env=cluster_env(database_url))
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0
        self.log_path = data_dir.parent / f"{name}.log"

    def start(self, timeout: float = 90.0) -> Node:
        self.starts += 1
        self.log_path = self.data_dir.parent / f"{self.name}-{self.starts}.log"  # a restart keeps the old log
        super().start(timeout)
        return self

    def kill(self) -> None:
        """kill -9 the node and everything it started (its process group), as a crash or the OOM killer would;
        returns once none of them runs. The main process goes first: its HTTP worker process (Granian's) can
        still take requests for some milliseconds after it, so the node is gone only when the whole group is."""
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        group = self.proc.pid
        os.killpg(group, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()
        deadline = time.monotonic() + 10
        while _live_members(group):
            assert time.monotonic() < deadline, f"{self.name}: processes of its group outlived kill -9"
            time.sleep(0.001)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _live_members(group: int) -> list[int]:
    """Processes of process group ``group`` that still run. A zombie waiting for its parent does not count, but a
    process whose first thread is a zombie while its other threads still exit does: its sockets close with the
    last thread."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[2]) != group:
                    continue
            states = []
            for task in os.listdir(f"/proc/{entry}/task"):
                with open(f"/proc/{entry}/task/{task}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
        if any(state not in ("Z", "X") for state in states):
            found.append(int(entry))
    return found


def cluster_env(database_url: str) -> dict[str, str]:
    """What every node and every CLI call of the cluster gets: the shared database and the store's credentials."""
    return {"FLASHML_DATABASE_URL": database_url, "FLASHML_S3_ACCESS_KEY": ACCESS,
            "FLASHML_S3_SECRET_KEY": SECRET}


class Cluster:
    """N nodes, one PostgreSQL database, one S3 bucket and HAProxy in front. ``database_url``: a database to share
    (an empty one); without it the harness starts a throw-away PostgreSQL cluster of its own."""

    def __init__(self, root: Path, nodes: int = 3, database_url: str | None = None, *extra: str,
                 lb_log: bool = True) -> None:
        self.root = root
        self.lb_log = lb_log
        self._own_postgres: PostgresCluster | None = None
        self._database_url = database_url
        self.count = nodes
        self.extra = extra
        self.moto: MotoProcess | None = None
        self.nodes: list[Node] = []
        self.lb: HAProxy | None = None

    @property
    def database_url(self) -> str:
        assert self._database_url is not None
        return self._database_url

    @property
    def lb_url(self) -> str:
        assert self.lb is not None
        return self.lb.url

    def start(self) -> Cluster:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if self._database_url is None:
                self._own_postgres = PostgresCluster().start()
                self._database_url = self._own_postgres.new_database()
            self.moto = MotoProcess().start()
            self.nodes = [Node(f"node{i + 1}", self.root / f"node{i + 1}" / "data", free_port(), self.database_url,
                               self.moto.endpoint, *self.extra) for i in range(self.count)]
            # Together, as a fleet restarts: the first migrates the empty database, the others wait for its lock.
            with ThreadPoolExecutor(self.count) as pool:
                list(pool.map(lambda n: n.start(), self.nodes))
            self.lb = HAProxy(self.root / "haproxy", [(n.name, n.port) for n in self.nodes], self.lb_log).start()
            for node in self.nodes:
                self.lb.wait_state(node.name, "UP")
            return self
        except BaseException:
            self.stop()
            raise

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def kill(self, index: int) -> Node:
        node = self.nodes[index]
        node.kill()
        return node

    def restart(self, index: int, timeout: float = 90.0) -> Node:
        """Start a stopped or killed node again on its port; returns when it answers ready (HAProxy may take up to
        CHECK_S * RISE more to send it traffic: ``lb.wait_state(name, "UP")``)."""
        node = self.nodes[index]
        assert not node.running, f"{node.name} is still running"
        node.proc = None
        return node.start(timeout)

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """The CLI in-process on the shared database (as an operator on any node's machine would run it)."""
        proc = subprocess.run([sys.executable, "-m", "flashml", *args, "--data-dir", str(self.nodes[0].data_dir)],
                              input=input, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **cluster_env(self.database_url)})
        if check and proc.returncode != 0:
            raise AssertionError(f"flashml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def create_key(self, name: str = "cluster admin", role: str = "admin") -> str:
        return self.cli("keys", "create", "--name", name, "--role", role).stdout.strip()

    def fetch(self, query: str, *args: object) -> list[dict]:
        """Rows of one query on the shared database, read the way an operator's psql would (for what the API
        does not show, such as which node holds a job)."""
        return asyncio.run(_fetch(self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1),
                                  query, args))

    def logs(self) -> str:
        """Every node's logs (each start's) and HAProxy's, for an assertion message."""
        parts = [f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                 for p in sorted(self.root.glob("node*/*.log"))]
        return "\n".join([*parts, f"--- haproxy\n{self.lb.log() if self.lb else ''}"])

    def stop(self) -> None:
        for node in self.nodes:
            if node.running:
                node.stop()
        if self.lb is not None:
            self.lb.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self._own_postgres is not None:
            self._own_postgres.stop()
            self._own_postgres = None


async def _fetch(dsn: str, query: str, args: tuple) -> list[dict]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


@contextmanager
def cluster(root: Path, nodes: int = 3, database_url: str | None = None, *extra: str,
            lb_log: bool = True) -> Iterator[Cluster]:
    c = Cluster(root, nodes, database_url, *extra, lb_log=lb_log).start()
    try:
        yield c
    finally:
        c.stop()


def served_by(response: httpx.Response) -> str:
    """The node that answered a request sent through HAProxy."""
    return response.headers[NODE_HEADER]

