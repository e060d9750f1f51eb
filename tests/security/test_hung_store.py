"""A hung artifact store (moto's S3 server frozen with SIGSTOP), one that restarts empty, and what FlashML does.

The store is a real process that accepts connections and then answers nothing, like a hung MinIO; FlashML is
the real server over HTTP (and, for its thread pools, the real services in-process).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from flashml.composition import open_services
from flashml.settings import load_settings
from flashml.storage.base import StorageUnavailableError
from tests.helpers import onnx_models
from tests.helpers.in_process import run
from tests.helpers.s3_server import ACCESS, SECRET, MotoProcess, moto_process
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml, login_token

pytestmark = pytest.mark.server

DEADLINE_S = 4.0
SLACK_S = 1.5  # the event loop, and a 2-core machine shared with other tests
PASSWORD = "correct horse battery"
UPLOAD = {"Content-Type": "application/octet-stream"}
S3_ENV = {"FLASHML_S3_ACCESS_KEY": ACCESS, "FLASHML_S3_SECRET_KEY": SECRET}


@pytest.fixture()
def store() -> MotoProcess:
    with moto_process() as server:
        yield server


def serve(tmp_path, store: MotoProcess, *extra: str) -> ServerProcess:
    return ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--storage", "s3", "--s3-endpoint", store.endpoint,
                         "--s3-bucket", "flashml-hung", "--no-s3-secure", "--storage-deadline-s", str(DEADLINE_S),
                         *extra, env=S3_ENV).start()


def api(srv: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.create_key()}"}, timeout=60)


def upload(client: httpx.Client, model: str, data: bytes) -> tuple[httpx.Response, float, float]:
    """The answer, how long it took, and when it came."""
    started = time.monotonic()
    r = client.post(f"/api/v1/models/{model}/versions", content=data, headers=UPLOAD)
    return r, time.monotonic() - started, time.monotonic()


def test_a_hung_store_fails_uploads_503_within_the_deadline_and_sign_in_stays_quick(tmp_path, store):
    model = onnx_models.add_model(tmp_path / "m.onnx").read_bytes()
    srv = serve(tmp_path, store)
    try:
        flashml("users", "create", "ada", "--role", "admin", "--password-stdin", "--data-dir", str(srv.data_dir),
                input=f"{PASSWORD}\n")
        with api(srv) as c, ThreadPoolExecutor(8) as pool, httpx.Client(base_url=srv.url, timeout=3 * SLACK_S) as web:
            form = login_token(web)
            store.freeze()
            uploads = [pool.submit(upload, c, f"m{i}", model) for i in range(8)]
            time.sleep(0.3)  # every upload now waits on the store

            r = web.post("/login", data={**form, "name": "ada", "password": PASSWORD})
            signed_in = time.monotonic()
            assert r.status_code == 303, r.text
            answers = [u.result() for u in uploads]
            assert signed_in < min(at for _, _, at in answers)  # while every upload still hung

            for r, took, _ in answers:
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "storage_unavailable"
                assert "Traceback" not in r.text and "MaxRetryError" not in r.json()["error"]
                assert took < DEADLINE_S + SLACK_S
    finally:
        store.thaw()
        srv.stop()


def test_hung_store_calls_leave_the_default_thread_pool_and_the_hashing_threads_free(tmp_path, store, monkeypatch):
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings({"data_dir": str(tmp_path / "data"), "device": "cpu", "storage": "s3",
                              "s3_endpoint": store.endpoint, "s3_bucket": "flashml-pools", "s3_secure": False,
                              "storage_deadline_s": DEADLINE_S, "housekeeping_interval_s": 3600}, env={})

    async def body():
        yield b"never read: the store check comes first"

    async def scenario():
        # The default pool of a 2-core server (min(32, cores + 4) threads), whatever this machine has.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(6))
        services = await open_services(settings)
        try:
            await services.users.create("ada", PASSWORD, role="admin", actor="test")
            store.freeze()
            calls = [asyncio.create_task(services.registry.upload(f"m{i}", body(), source_name="m.onnx", actor="t",
                                                                  content_length=None)) for i in range(8)]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), SLACK_S) == "free"
            token, user = await asyncio.wait_for(services.sign_ins.login("ada", PASSWORD, "127.0.0.1"), 2 * SLACK_S)
            assert user.name == "ada" and time.monotonic() - started < 2 * SLACK_S
            assert not any(c.done() for c in calls)
            for outcome in await asyncio.gather(*calls, return_exceptions=True):
                assert isinstance(outcome, StorageUnavailableError), outcome
        finally:
            store.thaw()
            await services.close()

    run(scenario())


def test_a_store_that_restarts_empty_gets_its_bucket_back_on_the_next_upload(tmp_path, store):
    model = onnx_models.add_model(tmp_path / "m.onnx").read_bytes()
    srv = serve(tmp_path, store)
    try:
        with api(srv) as c:
            r, _, _ = upload(c, "before", model)
            assert r.status_code == 201, r.text
            store.restart_empty()  # same port, no buckets
            r, _, _ = upload(c, "after", model)
            assert r.status_code == 201, r.text
            assert r.json()["state"] == "ready", r.json()  # not internal_error NoSuchBucket
            r = c.post("/v2/models/after/infer", json={"inputs": [
                {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]})
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
    finally:
        srv.stop()


def dataset(rows: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["a", "b"])
    for i in range(rows):
        w.writerow([json.dumps([i, i, i, i]), json.dumps([1, 2, 3, 4])])
    return out.getvalue().encode()


def start_job(c: httpx.Client, store: MotoProcess, model: bytes, rows: int) -> int:
    """A model and a dataset in the store, then a job started while the store hangs."""
    assert upload(c, "adder", model)[0].status_code == 201
    r = c.post("/api/v1/datasets", params={"filename": "d.csv"}, content=dataset(rows), headers=UPLOAD)
    assert r.status_code == 201, r.text
    store.freeze()
    r = c.post("/api/v1/jobs", json={"model": "adder", "dataset": r.json()["id"], "chunk_rows": 20})
    assert r.status_code == 201, r.text
    return r.json()["job"]["id"]


def wait_for(c: httpx.Client, job_id: int, done, timeout_s: float) -> dict:
    give_up = time.monotonic() + timeout_s
    while not done(job := c.get(f"/api/v1/jobs/{job_id}").json(), c.get(f"/api/v1/jobs/{job_id}/log").json()):
        assert time.monotonic() < give_up, job
        time.sleep(0.2)
    return job


def test_a_job_that_finds_the_store_hung_waits_and_completes_when_it_returns(tmp_path, store):
    model = onnx_models.add_model(tmp_path / "m.onnx").read_bytes()
    srv = serve(tmp_path, store)
    try:
        with api(srv) as c:
            job_id = start_job(c, store, model, rows=50)
            job = wait_for(c, job_id, lambda job, log: any("cannot be reached" in e["message"] for e in log),
                           DEADLINE_S + 3 * SLACK_S)
            assert job["state"] == "queued"  # waiting for the store, not failed
            store.thaw()
            job = wait_for(c, job_id, lambda job, log: job["state"] in ("succeeded", "failed"), 30)
            assert job["state"] == "succeeded" and job["rows_done"] == 50, job
    finally:
        store.thaw()
        srv.stop()


def test_a_job_fails_saying_why_when_the_store_stays_away(tmp_path, store):
    model = onnx_models.add_model(tmp_path / "m.onnx").read_bytes()
    srv = serve(tmp_path, store, "--job-storage-wait-s", "3")
    try:
        with api(srv) as c:
            job_id = start_job(c, store, model, rows=5)
            job = wait_for(c, job_id, lambda job, log: job["state"] == "failed", 30)
            assert job["error"]["code"] == "storage_unavailable"
            assert "job_storage_wait_s" in job["error"]["error"] and "Retry" in job["error"]["error"]
    finally:
        store.thaw()
        srv.stop()
