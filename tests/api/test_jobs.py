"""Batch jobs in process: datasets in every format, mapping checks, results, bad rows, control, schedules."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np

from tests.helpers.jobs import csv_dataset, push, run_job, wait


def test_csv_dataset_scored_by_alias_every_row_once_with_row_ids(api, adder):
    r = push(api, "rows.csv", csv_dataset(250))
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["format"] == "csv" and ds["rows"] == 250 and [c["name"] for c in ds["columns"]] == ["a", "b", "note"]
    assert ds["id"] in [d["id"] for d in api.get("/api/v1/datasets").json()]
    job = run_job(api, model=adder, version="stable", dataset=ds["id"], chunk_rows=64, output_format="csv")
    assert job["state"] == "succeeded", job
    assert job["resolved_version"] == 1 and job["rows_done"] == 250 and job["rows_bad"] == 0
    assert job["progress"] == 1.0
    result = api.get(job["result_url"])
    assert result.status_code == 200
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert [int(r["row_id"]) for r in rows] == list(range(250))
    assert json.loads(rows[7]["sum"]) == [8, 9, 10, 11]


def test_jsonl_npy_npz_datasets_and_output_formats(api, adder):
    lines = "".join(json.dumps({"a": [i, 0, 0, 0], "b": [0, 0, 0, 1]}) + "\n" for i in range(30)).encode()
    ds = push(api, "rows.jsonl", lines).json()
    job = run_job(api, model=adder, dataset=ds["id"], chunk_rows=7, output_format="jsonl")
    assert job["state"] == "succeeded" and job["resolved_version"] == 2  # newest ready version
    out = [json.loads(line) for line in api.get(job["result_url"]).text.splitlines()]
    assert [o["row_id"] for o in out] == list(range(30)) and out[3]["sum"] == [103, 100, 100, 101]

    buf = io.BytesIO()
    np.savez(buf, a=np.arange(40, dtype=np.float32).reshape(10, 4), b=np.ones((10, 4), np.float64))
    ds = push(api, "rows.npz", buf.getvalue()).json()
    assert ds["rows"] == 10 and {c["name"]: c["shape"] for c in ds["columns"]} == {"a": [-1, 4], "b": [-1, 4]}
    job = run_job(api, model=adder, version="1", dataset=ds["id"], chunk_rows=3, output_format="npz")
    assert job["state"] == "succeeded", job
    result = np.load(io.BytesIO(api.get(job["result_url"]).content))
    assert result["row_id"].tolist() == list(range(10))
    assert result["sum"][2].tolist() == [9, 10, 11, 12]

    buf = io.BytesIO()
    np.save(buf, np.full((5, 4), 2, np.float32))
    ds = push(api, "a.npy", buf.getvalue()).json()
    assert [c["name"] for c in ds["columns"]] == ["a"]
    job = run_job(api, model=adder, version="1", dataset=ds["id"], mapping={"b": "a"}, output_format="jsonl")
    assert job["state"] == "succeeded", job
    assert json.loads(api.get(job["result_url"]).text.splitlines()[4]) == {"row_id": 4, "sum": [4, 4, 4, 4]}


def test_refusals_are_clear_4xx(api, adder):
    assert push(api, "data.xlsx", b"PK").json()["code"] == "unsupported_format"
    empty = push(api, "data.csv", b"")
    assert empty.status_code == 400 and empty.json()["code"] == "empty_upload" and "dataset" in empty.json()["error"]
    odd = push(api, "odd name (1) é.csv", b"a,b\n[1,2,3,4],[1,2,3,4]\n")
    assert odd.status_code == 201 and odd.json()["name"] == "odd name (1) é.csv"
    r = push(api, "data.csv", b"a,b\n" + b"1,2\n" * 10)
    ds = r.json()
    missing = api.post("/api/v1/jobs", json={"model": adder, "dataset": ds["id"], "mapping": {"zz": "a"}})
    assert missing.status_code == 400 and missing.json()["code"] == "mapping_mismatch", missing.text
    other = push(api, "other.csv", b"x,y\n1,2\n").json()
    r = api.post("/api/v1/jobs", json={"model": adder, "dataset": other["id"]})
    assert r.status_code == 400 and r.json()["code"] == "mapping_mismatch"
    assert r.json()["details"]["missing"] == ["a", "b"]
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros((3, 5), np.float32), b=np.zeros((3, 4), np.float32))
    wrong = push(api, "wrong.npz", buf.getvalue()).json()
    r = api.post("/api/v1/jobs", json={"model": adder, "dataset": wrong["id"]})
    assert r.status_code == 400 and "shape" in r.json()["error"]
    assert api.post("/api/v1/jobs", json={"model": "nope", "dataset": ds["id"]}).status_code == 404
    assert api.post("/api/v1/jobs", json={"model": adder, "dataset": "nope"}).json()["code"] == "dataset_not_found"
    assert api.post("/api/v1/jobs", json={"model": adder, "dataset": ds["id"],
                                          "output_format": "xml"}).json()["code"] == "bad_output_format"
    bad_cron = api.post("/api/v1/jobs", json={"model": adder, "dataset": ds["id"], "schedule": {"cron": "* *"}})
    assert bad_cron.status_code == 400 and bad_cron.json()["code"] == "bad_cron"
    assert api.get("/api/v1/jobs/999999").status_code == 404


def test_bad_rows_skipped_with_row_numbers_or_fail_the_job(api, adder):
    ds = push(api, "bad.csv", csv_dataset(20, bad={3, 17})).json()
    job = run_job(api, model=adder, version="1", dataset=ds["id"], chunk_rows=8, output_format="csv")
    assert job["state"] == "succeeded" and job["rows_bad"] == 2 and job["rows_done"] == 20
    ids = [int(r["row_id"]) for r in csv.DictReader(io.StringIO(api.get(job["result_url"]).text))]
    assert ids == [i for i in range(20) if i not in (3, 17)]
    log = api.get(f"/api/v1/jobs/{job['id']}/log").json()
    assert [e["row"] for e in log if e["level"] == "error"] == [3, 17]
    assert "'oops'" in log[0]["message"]
    failed = run_job(api, model=adder, version="1", dataset=ds["id"], chunk_rows=8, on_bad_row="fail")
    assert failed["state"] == "failed" and failed["error"]["code"] == "bad_row" and failed["rows_done"] == 0
    assert "Row 3" in failed["error"]["error"]
    assert api.get(failed["result_url"] or f"/api/v1/jobs/{failed['id']}/result").status_code == 409


def test_pause_resume_cancel_retry(api, adder):
    ds = push(api, "long.csv", csv_dataset(3000)).json()
    r = api.post("/api/v1/jobs", json={"model": adder, "version": "1", "dataset": ds["id"], "chunk_rows": 10})
    job_id = r.json()["job"]["id"]
    paused = api.post(f"/api/v1/jobs/{job_id}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert api.post(f"/api/v1/jobs/{job_id}/pause").json()["code"] == "bad_job_state"
    time.sleep(0.5)
    stopped_at = api.get(f"/api/v1/jobs/{job_id}").json()["rows_done"]
    assert stopped_at < 3000
    assert api.post(f"/api/v1/jobs/{job_id}/resume").json()["state"] == "queued"
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
    assert api.post(f"/api/v1/jobs/{job_id}/retry").json()["state"] == "queued"
    job = wait(api, job_id)
    assert job["state"] == "succeeded" and job["rows_done"] == 3000
    ids = [int(r["row_id"]) for r in csv.DictReader(io.StringIO(api.get(job["result_url"]).text))]
    assert ids == list(range(3000))
    assert api.post(f"/api/v1/jobs/{job_id}/retry").status_code == 409
    assert api.post(f"/api/v1/jobs/{job_id}/explode").status_code == 404


def test_a_schedule_fires_again_and_again(api, adder):
    ds = push(api, "tiny.csv", csv_dataset(5)).json()
    r = api.post("/api/v1/jobs", json={"model": adder, "version": "1", "dataset": ds["id"],
                                       "schedule": {"interval_s": 1, "timezone": "Europe/Paris"}})
    assert r.status_code == 201, r.text
    schedule = r.json()["schedule"]
    assert schedule["next_run_at"] is not None
    deadline = time.monotonic() + 30
    runs: list[dict] = []
    while time.monotonic() < deadline and len(runs) < 2:
        runs = [j for j in api.get("/api/v1/jobs").json() if j["schedule_id"] == schedule["id"]
                and j["state"] == "succeeded"]
        time.sleep(0.2)
    assert len(runs) >= 2
    assert api.delete(f"/api/v1/schedules/{schedule['id']}").status_code == 204
    assert schedule["id"] not in [s["id"] for s in api.get("/api/v1/schedules").json()]


def test_housekeeping_status(api):
    deadline = time.monotonic() + 30
    while not all(t["last_run_at"] for t in api.get("/api/v1/housekeeping").json()):  # first round soon after start
        assert time.monotonic() < deadline
        time.sleep(0.2)
    tasks = {t["task"]: t for t in api.get("/api/v1/housekeeping").json()}
    assert set(tasks) == {"uploads", "job_outputs", "model_cache"}
    assert all(t["next_run_at"] for t in tasks.values())
    assert all(t["last_run_at"] and t["error"] is None for t in tasks.values()), tasks  # each ran soon after start
