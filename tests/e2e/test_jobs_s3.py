"""Batch jobs with `--storage s3` (moto on loopback): datasets and results in the bucket; housekeeping removes
old job outputs and archived versions from the node-local cache."""

from __future__ import annotations

import csv
import io
import time

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset, push, wait
from tests.helpers.s3 import Moto, objects, s3_server
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server


def _until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "housekeeping did not get there"
        time.sleep(0.2)


def test_jobs_on_s3_and_housekeeping(tmp_path):
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto, "--housekeeping-interval-s", "1", "--job-retention-s", "4").start()
    try:
        key = srv.create_key("s3 jobs")
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
            for n in (1, 2):
                assert upload(api, "adder", onnx_models.offset_add_model(tmp_path / f"{n}.onnx", n)).status_code == 201
            ds = push(api, "s3.csv", csv_dataset(50)).json()
            assert f"site-a/datasets/{ds['id']}/data.csv" in objects(moto)
            job = api.post("/api/v1/jobs", json={"model": "adder", "version": "1", "dataset": ds["id"],
                                                 "chunk_rows": 16}).json()["job"]
            job = wait(api, job["id"])
            assert job["state"] == "succeeded", job
            ids = [int(r["row_id"]) for r in csv.DictReader(io.StringIO(api.get(job["result_url"]).text))]
            assert ids == list(range(50))
            stored = [o for o in objects(moto) if o.startswith(f"site-a/jobs/{job['id']}/")]
            assert stored == [f"site-a/jobs/{job['id']}/result.csv"]  # the chunks went once the result was whole

            # Past job_retention_s the result goes; the job stays, saying so.
            _until(lambda: api.get(f"/api/v1/jobs/{job['id']}/result").status_code == 404)
            assert api.get(f"/api/v1/jobs/{job['id']}/result").json()["code"] == "result_expired"
            assert not [o for o in objects(moto) if o.startswith(f"site-a/jobs/{job['id']}/")]

            # An archived version leaves the node-local cache; the served one stays.
            cache = srv.data_dir / "cache" / "models" / "adder"
            assert (cache / "v1").is_dir()
            assert api.post("/api/v1/models/adder/versions/1/archive").status_code == 200
            _until(lambda: not (cache / "v1").exists())
            assert (cache / "v2").is_dir()
            tasks = {t["task"]: t for t in api.get("/api/v1/housekeeping").json()}
            assert tasks["model_cache"]["last_run_at"] and tasks["model_cache"]["error"] is None
    finally:
        srv.stop()
        moto.stop()
