"""Batch jobs over HTTP: push a dataset, run a job and wait for it, and a CSV dataset with bad rows where asked."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import httpx

from tests.helpers import onnx_models
from tests.helpers.uploads import upload


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


def publish_adder(api: httpx.Client, folder: Path, model: str = "jobadder") -> str:
    """The batch jobs' model: v1 adds, v2 adds 100, alias stable is v1; made once per server or app."""
    if api.get(f"/api/v1/models/{model}").status_code == 200:  # another module of this session made it
        return model
    assert upload(api, model, onnx_models.offset_add_model(folder / "v1.onnx", 0)).status_code == 201
    assert upload(api, model, onnx_models.offset_add_model(folder / "v2.onnx", 100)).status_code == 201
    assert api.put(f"/api/v1/models/{model}/aliases/stable", json={"version": 1}).status_code == 200
    return model
