"""kill -9 the real server in the middle of a job: at the next start it resumes from its last finished chunk.

The restarted server listens on another free port, so it keeps its node name through node_id, as a node restarted
in place does (its name is host:port): the job is its own, requeued at start-up without waiting out the lease."""

from __future__ import annotations

import csv
import io
import json
import signal
import time

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset, push, wait
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server
ROWS = 20000
FLAGS = (*SERVER_FLAGS, "--node-id", "resume-node")


def test_killed_mid_job_resumes_and_scores_every_row_exactly_once(tmp_path):
    srv = ServerProcess(tmp_path / "data", *FLAGS).start()
    try:
        key = srv.create_key("resume", "admin")
        api = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert upload(api, "adder", onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
        ds = push(api, "big.csv", csv_dataset(ROWS)).json()
        job_id = api.post("/api/v1/jobs", json={"model": "adder", "dataset": ds["id"], "chunk_rows": 40,
                                                "output_format": "csv"}).json()["job"]["id"]
        deadline = time.monotonic() + 60
        while (done := api.get(f"/api/v1/jobs/{job_id}").json()["rows_done"]) < 400:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        srv.signal(signal.SIGKILL)
        srv.proc.wait(10)
        api.close()
        assert done < ROWS, "the job finished before the kill: make the dataset bigger"

        srv = ServerProcess(srv.data_dir, *FLAGS).start()
        api = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        job = wait(api, job_id, timeout=120)
        assert job["state"] == "succeeded", job
        assert job["rows_done"] == ROWS and job["rows_bad"] == 0
        rows = list(csv.DictReader(io.StringIO(api.get(job["result_url"]).text)))
        assert [int(r["row_id"]) for r in rows] == list(range(ROWS))  # every row, once, in order
        assert all(json.loads(r["sum"]) == [int(r["row_id"]) + k for k in (1, 2, 3, 4)] for r in rows)
        resumed = [e for e in api.get(f"/api/v1/jobs/{job_id}/log").json() if "resumes" in e["message"]]
        assert len(resumed) == 1
        restart_point = int(resumed[0]["message"].split("(")[1].split()[0])
        assert restart_point >= done  # it did not start over: what was checkpointed before the kill stayed
        assert resumed[0]["message"].startswith("The server stopped during this job")  # its own, at start-up
        api.close()
    finally:
        srv.stop()
