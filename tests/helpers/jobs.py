"""Batch jobs over HTTP: push a dataset, run a job and wait for it, and a CSV dataset with bad rows where asked."""

from __future__ import annotations

import csv
import io
import json
import time

import httpx


def push(api: httpx.Client, filename: str, data: bytes) -> httpx.Response:
    return api.post("/api/v1/datasets", params={"filename": filename}, content=data,
                    headers={"Content-Type": "application/octet-stream"})


def wait(api: httpx.Client, job_id: int, states=("succeeded", "failed", "cancelled"), timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is still {job['state']}")


def run_job(api: httpx.Client, **body) -> dict:
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return wait(api, r.json()["job"]["id"])


def csv_dataset(rows: int, bad: set[int] = frozenset()) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["a", "b", "note"])
    for i in range(rows):
        a = "oops" if i in bad else json.dumps([i, i, i, i])
        w.writerow([a, json.dumps([1, 2, 3, 4]), f"row {i}"])
    return out.getvalue().encode()
