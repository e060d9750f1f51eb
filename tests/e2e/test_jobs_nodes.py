"""Batch jobs on two real `flashml serve` nodes sharing one database (a SQLite file, then PostgreSQL) and one S3
store (moto):
a node killed with kill -9 mid-job, or stopped (SIGSTOP, on PostgreSQL) past its lease, has its job taken over by the
other node,
which goes on from the last finished chunk; every row is scored once, and a node that wakes after losing its job
writes nothing more of it. Starting a node never takes a job another live node runs."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset, push, wait
from tests.helpers.s3 import Moto, objects, s3_server
from tests.helpers.server_process import ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server
ROWS = 40000
CHUNK = 40
SYNC_S = 0.2  # a job's lease is 10 sync intervals: 2 s here (10 s at the default 1 s)
LEASE_S = 10 * SYNC_S


def _shared(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    monkeypatch.setenv("FLASHML_DATABASE_URL", url)
    server = Moto().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def moto(request, tmp_path, monkeypatch) -> Iterator[Moto]:
    """One store and, through the environment both nodes and the CLI read, one database for both nodes: a SQLite
    file, then a PostgreSQL database."""
    url = request.getfixturevalue("postgres").new_database() if request.param == "postgresql" \
        else f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    yield from _shared(url, monkeypatch)


@pytest.fixture()
def moto_postgresql(postgres, monkeypatch) -> Iterator[Moto]:
    """One store and a PostgreSQL database for both nodes. Not SQLite: a node frozen while it writes (SIGSTOP lands
    inside a transaction about one time in three here) holds SQLite's write lock, and no other process can write,
    the takeover included, until it runs again. PostgreSQL has no database-wide write lock (docs/database.md)."""
    yield from _shared(postgres.new_database(), monkeypatch)


def node(tmp_path, moto: Moto, name: str) -> ServerProcess:
    return s3_server(tmp_path / name, moto, "--node-id", name, "--sync-interval-s", str(SYNC_S))


def client(srv: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def start_job(api: httpx.Client, tmp_path) -> int:
    assert upload(api, "adder", onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
    ds = push(api, "big.csv", csv_dataset(ROWS)).json()
    return api.post("/api/v1/jobs", json={"model": "adder", "dataset": ds["id"], "chunk_rows": CHUNK,
                                          "output_format": "csv"}).json()["job"]["id"]


def until(api: httpx.Client, job_id: int, check, what: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while not check(job := api.get(f"/api/v1/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, f"{what}: {job}"
        time.sleep(0.02)
    return job


def every_row_once(api: httpx.Client, job: dict) -> None:
    assert job["state"] == "succeeded", job
    assert job["rows_done"] == ROWS and job["rows_bad"] == 0, job  # no chunk counted twice
    rows = list(csv.DictReader(io.StringIO(api.get(job["result_url"]).text)))
    assert [int(r["row_id"]) for r in rows] == list(range(ROWS))  # every row, once, in order
    assert all(json.loads(r["sum"]) == [int(r["row_id"]) + k for k in (1, 2, 3, 4)] for r in rows)


def taken_over(api: httpx.Client, job_id: int, dead: str, alive: str) -> int:
    """The one log line of the takeover; the row it went on from."""
    log = [e["message"] for e in api.get(f"/api/v1/jobs/{job_id}/log").json()]
    resumed = [m for m in log if "resumes" in m]
    assert len(resumed) == 1, log
    assert resumed[0].startswith(f"Node {dead} stopped answering; node {alive} resumes the job"), resumed
    return int(re.search(r"\((\d+) rows", resumed[0]).group(1))


def test_a_job_on_a_node_killed_with_kill_9_is_taken_over_after_its_lease(tmp_path, moto):
    a = node(tmp_path, moto, "node-a").start()
    b = None
    try:
        key = a.create_key("jobs", "admin")
        with client(a, key) as api_a:
            job_id = start_job(api_a, tmp_path)
            until(api_a, job_id, lambda j: j["rows_done"] >= 10 * CHUNK, "no chunk finished on node-a")
        # A node starting while another runs a job leaves it alone: its start-up requeues only its own.
        b = node(tmp_path, moto, "node-b").start()
        api_b = client(b, key)
        time.sleep(LEASE_S + 3 * SYNC_S)  # past a lease: node-a renews it, so node-b never takes it
        job = api_b.get(f"/api/v1/jobs/{job_id}").json()
        assert job["state"] == "running" and job["node"] == "node-a", job
        a.signal(signal.SIGKILL)
        a.proc.wait(10)
        killed = time.monotonic()
        done_at_kill = api_b.get(f"/api/v1/jobs/{job_id}").json()["rows_done"]
        assert done_at_kill < ROWS, "the job finished before the kill: make the dataset bigger"
        until(api_b, job_id, lambda j: j["node"] == "node-b" and j["state"] == "running", "not taken over",
              timeout=LEASE_S + 10)
        takeover_s = time.monotonic() - killed
        job = wait(api_b, job_id, timeout=180)
        every_row_once(api_b, job)
        assert job["node"] == "node-b"
        assert taken_over(api_b, job_id, "node-a", "node-b") >= done_at_kill  # not started over
        assert takeover_s <= LEASE_S + 2.0, takeover_s
        print(f"\ntaken over {takeover_s:.1f} s after kill -9 (lease {LEASE_S:g} s)")
        api_b.close()
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_a_node_stopped_past_its_lease_loses_the_job_and_writes_nothing_more_of_it(tmp_path, moto_postgresql):
    moto = moto_postgresql
    a = node(tmp_path, moto, "node-a").start()
    b = node(tmp_path, moto, "node-b").start()
    nodes = {"node-a": a, "node-b": b}
    try:
        key = a.create_key("jobs", "admin")
        with client(a, key) as api_a:
            job_id = start_job(api_a, tmp_path)
            job = until(api_a, job_id, lambda j: j["rows_done"] >= 10 * CHUNK, "no chunk finished")
        holder = job["node"]
        other = "node-b" if holder == "node-a" else "node-a"
        with client(nodes[other], key) as api:
            nodes[holder].signal(signal.SIGSTOP)  # the whole node, mid-chunk: it renews nothing until woken
            try:
                until(api, job_id, lambda j: j["node"] == other and j["state"] == "running", "not taken over",
                      timeout=LEASE_S + 10)
                until(api, job_id, lambda j: j["rows_done"] >= job["rows_done"] + 5 * CHUNK, "no progress")
            finally:
                nodes[holder].signal(signal.SIGCONT)
            job = wait(api, job_id, timeout=180)
            every_row_once(api, job)
            taken_over(api, job_id, holder, other)
            # The woken node found the job gone at its next renewal or checkpoint: no chunk of its own stays.
            deadline = time.monotonic() + 10
            while (left := [o for o in objects(moto) if o.startswith(f"site-a/jobs/{job_id}/")]) != \
                    [f"site-a/jobs/{job_id}/result.csv"]:
                assert time.monotonic() < deadline, left
                time.sleep(0.2)
            assert nodes[holder].proc.poll() is None  # and it lives on
            assert api.get(f"/api/v1/jobs/{job_id}").json()["rows_done"] == ROWS
    finally:
        a.stop()
        b.stop()
