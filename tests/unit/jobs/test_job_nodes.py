"""Batch jobs, schedules and housekeeping on two nodes: two whole services graphs (as two `flashml serve` build
them) sharing one database (SQLite, then PostgreSQL) and one S3 store (moto on loopback)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from flashml.composition import Services, open_services
from flashml.db import changes
from flashml.db import jobs as jobs_db
from flashml.jobs.requests import JobRequest, ScheduleBody
from flashml.settings import load_settings
from tests.helpers.in_process import publish_offset_versions
from tests.helpers.jobs import csv_dataset
from tests.helpers.postgres import database_settings
from tests.helpers.s3_server import ACCESS, SECRET

SYNC_S = 0.2
ROWS = 600


def node_settings(tmp_path: Path, name: str, db: Path | str, s3: str) -> Any:
    creds = tmp_path / "s3.toml"
    creds.write_text(f'access_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n')
    creds.chmod(0o600)
    shared_db = {"database_url": f"sqlite+aiosqlite:///{db}"} if isinstance(db, Path) else database_settings(db)
    return load_settings({"data_dir": str(tmp_path / name), "device": "cpu", "autotune": False, "node_id": name,
                          "sync_interval_s": SYNC_S, "storage": "s3", "s3_endpoint": s3, "s3_secure": False,
                          "s3_bucket": f"jobs-{tmp_path.name[-20:].lower().replace('_', '-')}",
                          "s3_credentials_file": str(creds), "in_use_window_s": 0, **shared_db}, env={})


async def _bytes(data: bytes):
    yield data


async def two_nodes(tmp_path: Path, db: Path | str, s3: str) -> tuple[Services, Services, str]:
    """Node A with the adder model and a dataset; node B started after them (it loads the model at start)."""
    a = await open_services(node_settings(tmp_path, "node-a", db, s3))
    await publish_offset_versions(a.registry, tmp_path, (0,), model="adder")
    dataset = await a.datasets.upload("rows.csv", _bytes(csv_dataset(ROWS)), content_length=None, actor="t")
    b = await open_services(node_settings(tmp_path, "node-b", db, s3))
    return a, b, dataset.id


async def until(check, bound_s: float = 10 * SYNC_S) -> None:
    deadline = time.monotonic() + bound_s
    while not check():
        assert time.monotonic() < deadline, f"not within {bound_s} s"
        await asyncio.sleep(0.02)


async def settled(services: tuple[Services, ...], job_ids: list[int], timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = [await jobs_db.get_job(services[0].engine, i) for i in job_ids]
        if all(r is not None and r["state"] in ("succeeded", "failed", "cancelled") for r in rows):
            return [r for r in rows if r is not None]
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.05)


@pytest.fixture()
def db(db_target: Path | str) -> Path | str:
    return db_target


def test_each_job_is_claimed_by_exactly_one_node_and_both_nodes_work(tmp_path, db, s3_endpoint, runner):
    async def scenario() -> None:
        a, b, dataset = await two_nodes(tmp_path, db, s3_endpoint)
        try:
            # Both runners try to claim one queued job at once: one wins. (Their watches rest meanwhile, so
            # that only these two claims race.)
            await a.jobs.runner.watch.stop()
            await b.jobs.runner.watch.stop()
            raced = await jobs_db.add_job(a.engine, model="adder", version="1", dataset_id=dataset,
                                          output_format="csv", chunk_rows=100, on_bad_row="skip", mapping={},
                                          rows_total=ROWS, created_by="t")
            won = await asyncio.gather(a.jobs.runner._claim(raced), b.jobs.runner._claim(raced))
            assert sum(w is not None for w in won) == 1, won
            row = await jobs_db.get_job(a.engine, raced)
            assert row is not None and row["state"] == "running"
            assert row["node"] == ("node-a" if won[0] is not None else "node-b")
            assert row["lease_until"] > time.time()
            await jobs_db.move_job(a.engine, raced, ("running",), "cancelled", lease_until=None)
            a.jobs.runner.claim = b.jobs.runner.claim = None
            a.jobs.runner.watch.start()
            b.jobs.runner.watch.start()

            # Jobs accepted by node A: node B, idle, claims the queued ones A has not got to.
            spec = await a.jobs.check_spec(JobRequest(model="adder", version="1", dataset=dataset, chunk_rows=50,
                                                      output_format="csv"))
            ids = [(await a.jobs.start(spec, actor="t")).id for _ in range(6)]
            rows = await settled((a, b), ids)
            assert {r["state"] for r in rows} == {"succeeded"}, rows
            assert {r["node"] for r in rows} == {"node-a", "node-b"}, [r["node"] for r in rows]
            for r in rows:
                assert r["rows_done"] == ROWS and r["lease_until"] is None
                assert [c["chunk"] for c in await jobs_db.chunks(a.engine, r["id"])] == list(range(ROWS // 50))
                log = [e["message"] for e in await jobs_db.job_log_entries(a.engine, r["id"])]
                assert not [m for m in log if "resumes" in m], log  # each ran once, on one node
                text = await asyncio.to_thread(_read, a, r["result_key"])
                assert [int(line.split(",")[0]) for line in text.splitlines()[1:]] == list(range(ROWS))
        finally:
            await b.close()
            await a.close()

    runner.run(scenario())


def _read(services: Services, key: str) -> str:
    dest = services.settings.data_dir / "tmp" / "read-result.csv"
    services.store.get_file(key, dest)
    return dest.read_text()


def test_a_job_whose_node_stopped_renewing_is_requeued_once_and_resumed_by_another(tmp_path, db, s3_endpoint,
                                                                                     runner):
    """Node A dies mid-job (here: its runner stops, and the job is left running on A as kill -9 leaves it); a
    node starting meanwhile leaves it alone while the lease holds; once it runs out, both other nodes' watches
    see it, one requeues it, and one resumes it from A's last checkpoint, saying so once in the job's log."""
    async def scenario() -> None:
        a, b, dataset = await two_nodes(tmp_path, db, s3_endpoint)
        c = None
        try:
            await b.jobs.runner.watch.stop()
            spec = await a.jobs.check_spec(JobRequest(model="adder", version="1", dataset=dataset, chunk_rows=20,
                                                      output_format="csv"))
            job_id = (await a.jobs.start(spec, actor="t")).id
            while (row := await jobs_db.get_job(a.engine, job_id)) is not None and row["rows_done"] < 100:
                await asyncio.sleep(0.01)
            await a.jobs.runner.stop()
            done = (await jobs_db.get_job(a.engine, job_id) or {})["rows_done"]
            assert 100 <= done < ROWS
            await jobs_db.set_job(a.engine, job_id, state="running", node="node-a", lease_until=time.time() + 60)

            c = await open_services(node_settings(tmp_path, "node-c", db, s3_endpoint))
            await c.jobs.runner.watch.stop()
            row = await jobs_db.get_job(a.engine, job_id)
            assert row is not None and (row["state"], row["node"]) == ("running", "node-a")  # not stolen at start

            await jobs_db.set_job(a.engine, job_id, lease_until=time.time() - 0.1)  # A's lease runs out
            await asyncio.gather(b.jobs.runner.watch.requeue_expired(), c.jobs.runner.watch.requeue_expired())
            b.jobs.runner.watch.start()
            (row,) = await settled((b,), [job_id])
            assert row["state"] == "succeeded" and row["rows_done"] == ROWS, row
            assert row["node"] in ("node-b", "node-c")
            assert [c["chunk"] for c in await jobs_db.chunks(b.engine, job_id)] == list(range(ROWS // 20))
            log = [e["message"] for e in await jobs_db.job_log_entries(b.engine, job_id)]
            resumed = [m for m in log if "resumes" in m]
            assert resumed == [f"Node node-a stopped answering; node {row['node']} resumes the job from its last "
                               f"finished chunk ({done} rows done)."], log
        finally:
            for services in (c, b, a):
                if services is not None:
                    await services.close()

    runner.run(scenario())


def test_a_schedule_fires_once_across_nodes_and_its_changes_reach_the_other(tmp_path, db, s3_endpoint, runner):
    async def scenario() -> None:
        a, b, dataset = await two_nodes(tmp_path, db, s3_endpoint)
        try:
            kind, made = await a.jobs.create(JobRequest(model="adder", version="1", dataset=dataset, chunk_rows=600,
                                                        schedule=ScheduleBody(interval_s=1)), actor="t")
            assert kind == "schedule"
            feed = [c for c in await changes.since(a.engine, 0) if c["kind"] == changes.SCHEDULE]
            assert [(c["node"], c["number"]) for c in feed] == [("node-a", made.id)]
            await until(lambda: b.scheduler.ids("schedule-") == [f"schedule-{made.id}"])  # B read the change
            await b.jobs.reload_schedules()  # what B did on it, again: a change read twice changes nothing
            assert b.scheduler.ids("schedule-") == [f"schedule-{made.id}"]
            nexts = {s.scheduler.next_run(f"schedule-{made.id}") for s in (a, b)}
            assert len(nexts) == 1, nexts  # both planned it for the same moments
            started = time.time()
            await asyncio.sleep(4.3)
            rows = [r for r in await jobs_db.list_jobs(a.engine) if r["schedule_id"] == made.id]
            # Both schedulers fired every second; one job per firing (a run still going skips a firing).
            assert 2 <= len(rows) <= int(time.time() - started) + 1, [r["created_at"] for r in rows]
            times = sorted(r["created_at"] for r in rows)
            assert all(later - earlier > 0.5 for earlier, later in zip(times, times[1:], strict=False)), times

            await a.jobs.delete_schedule(made.id)
            await until(lambda: b.scheduler.ids("schedule-") == [])
        finally:
            await b.close()
            await a.close()

    runner.run(scenario())


def test_store_wide_housekeeping_runs_on_the_leader_only(tmp_path, db, s3_endpoint, runner):
    async def scenario() -> None:
        a, b, dataset = await two_nodes(tmp_path, db, s3_endpoint)
        try:
            spec = await a.jobs.check_spec(JobRequest(model="adder", version="1", dataset=dataset, chunk_rows=600))
            job = await a.jobs.start(spec, actor="t")
            leader = {"a": False}
            a.housekeeping.is_leader = lambda: leader["a"]
            b.housekeeping.is_leader = lambda: False
            await asyncio.gather(a.housekeeping.wait_idle(), b.housekeeping.wait_idle())
            since = time.time()
            (row,) = await settled((a,), [job.id])
            await jobs_db.set_job(a.engine, job.id, finished_at=time.time() - 10 * a.settings.job_retention_s)
            await a.housekeeping.run("job_outputs")
            await b.housekeeping.run("job_outputs")
            await b.housekeeping.run("model_cache")  # node-local: every node
            runs = {r["task"]: r for r in await jobs_db.housekeeping_runs_all(a.engine)}
            assert runs.get("job_outputs", {}).get("last_run_at", 0) < since, runs  # neither ran it
            assert runs["model_cache"]["last_run_at"] >= since
            assert runs["model_cache"]["error"] is None
            assert (await jobs_db.get_job(a.engine, job.id) or {})["result_key"] == row["result_key"]
            leader["a"] = True
            await a.housekeeping.run("job_outputs")
            assert (await jobs_db.get_job(a.engine, job.id) or {})["result_key"] is None
            runs = {r["task"]: r for r in await jobs_db.housekeeping_runs_all(a.engine)}
            assert runs["job_outputs"]["removed"] == 1
        finally:
            await b.close()
            await a.close()

    runner.run(scenario())
