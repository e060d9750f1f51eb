"""The real server with `--storage s3` against a real S3-protocol server (moto) on loopback."""

from __future__ import annotations

import io
import os
import shutil
import signal
import time

import httpx
import pytest
from minio import Minio

from tests.helpers import onnx_models
from tests.helpers.s3 import BUCKET, Moto, objects, s3_server
from tests.helpers.s3_server import ACCESS, SECRET
from tests.helpers.uploads import leftovers, upload, warmup_probes

pytestmark = pytest.mark.server

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}


def infer(c: httpx.Client, model: str) -> httpx.Response:
    return c.post(f"/v2/models/{model}/infer", json={"inputs": [A, B]})


def test_s3_storage_end_to_end(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto).start()
    try:
        key = srv.create_key("s3 admin")
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            r = upload(c, "adder", tmp_path / "m.onnx", "add.onnx")
            assert r.status_code == 201, r.text
            assert r.json()["report"]["storage"] == "s3"
            assert objects(moto) == ["site-a/models/adder/v1/checksums.json", "site-a/models/adder/v1/model.onnx",
                                     "site-a/uploads/cli/adder-v1.onnx"]
            assert not (srv.data_dir / "models").exists()  # the store is S3; the node keeps only its cache
            cached = srv.data_dir / "cache" / "models" / "adder" / "v1" / "model.onnx"
            assert cached.read_bytes() == (tmp_path / "m.onnx").read_bytes()
            assert infer(c, "adder").json()["outputs"][0]["data"] == [2, 3, 4, 5]
            assert leftovers(srv.data_dir) == []
        srv.stop()

        cached.write_bytes(b"a damaged cache entry")  # detected at the next load and fetched again
        srv = s3_server(tmp_path / "data", moto).start()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            assert infer(c, "adder").json()["outputs"][0]["data"] == [2, 3, 4, 5]
            assert cached.read_bytes() == (tmp_path / "m.onnx").read_bytes()
            assert "fetching it again" in srv.log()

            assert upload(c, "other", tmp_path / "m.onnx").status_code == 201
            assert c.post("/api/v1/models/other/versions/1/archive").json()["state"] == "archived"
            shutil.rmtree(srv.data_dir / "cache" / "models" / "other")

            # the store goes down: loaded models keep serving; uploads, loads and deletions fail fast with 503
            moto.stop()
            r = c.post("/api/v1/models/other/versions/1/restore")  # its files must come from the store
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
            assert c.get("/api/v1/models/other/versions/1").json()["state"] == "archived"
            assert infer(c, "adder").status_code == 200
            r = upload(c, "adder", tmp_path / "m.onnx")
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
            assert "storage is unreachable" in r.json()["error"]
            r = c.delete("/api/v1/models/adder/versions/1", params={"force": True})
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable"
            assert c.get("/api/v1/models/adder/versions/1").json()["state"] == "ready"
            assert [v["version"] for v in c.get("/api/v1/models/adder").json()["versions"]] == [1]

            # it comes back: service resumes by itself
            moto.start()
            assert upload(c, "adder", tmp_path / "m.onnx").status_code == 201
            assert c.post("/api/v1/models/other/versions/1/restore").json()["state"] == "ready"
            assert infer(c, "other").status_code == 200
            assert c.delete("/api/v1/models/other", params={"force": True}).status_code == 204
            assert c.delete("/api/v1/models/adder/versions/1", params={"force": True}).status_code == 204
            assert c.delete("/api/v1/models/adder", params={"force": True}).status_code == 204
            assert objects(moto) == []
            assert not (srv.data_dir / "cache" / "models" / "adder").exists()
            assert leftovers(srv.data_dir) == []
    finally:
        srv.stop()
        moto.stop()


def test_bad_upload_leaves_nothing_in_the_bucket(tmp_path):
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto).start()
    try:
        key = srv.create_key("s3 admin")
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            r = upload(c, "bad", b"not a model at all\n" * 10)
            assert r.status_code == 422 and r.json()["code"] == "not_onnx"
            assert objects(moto) == []
    finally:
        srv.stop()
        moto.stop()


def test_a_kill_mid_upload_leaves_no_version_and_a_restart_cleans_the_bucket(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    onnx_models.hang_model(tmp_path / "hang.onnx")
    moto = Moto().start()
    flags = ("--upload-wait-s", "1", "--validation-timeout-s", "120")
    srv = s3_server(tmp_path / "data", moto, *flags).start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            assert upload(c, "keep", tmp_path / "m.onnx", "m.onnx").status_code in (201, 202)
            deadline = time.monotonic() + 60
            while c.get("/api/v1/models/keep/versions/1").json()["state"] == "validating" \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.get("/api/v1/models/keep/versions/1").json()["state"] == "ready"
            assert upload(c, "hangs", tmp_path / "hang.onnx").status_code == 202
        deadline = time.monotonic() + 30
        while not warmup_probes(srv.data_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        probes = warmup_probes(srv.data_dir)
        assert probes
        with open(f"/proc/{probes[0]}/stat") as f:
            worker = int(f.read().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        srv.signal(signal.SIGKILL)
        srv.proc.wait(10)
        # what a kill during publication would leave: part of a version folder, a stray bundle, stray bytes
        client = Minio(moto.endpoint, access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1")
        for name in ("site-a/models/hangs/v1/model.onnx", "site-a/uploads/cli/hangs-v1.onnx", "site-a/incoming/x"):
            client.put_object(BUCKET, name, io.BytesIO(b"half"), 4)
    finally:
        srv.stop()
    again = s3_server(tmp_path / "data", moto, *flags).start()
    try:
        with httpx.Client(base_url=again.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            v = c.get("/api/v1/models/hangs/versions/1").json()
            assert v["state"] == "failed" and v["errors"][0]["code"] == "interrupted"
            assert infer(c, "keep").status_code == 200
        assert objects(moto) == ["site-a/models/keep/v1/checksums.json", "site-a/models/keep/v1/model.onnx",
                                 "site-a/uploads/cli/keep-v1.onnx"]
        assert leftovers(again.data_dir) == []
        deadline = time.monotonic() + 10
        while warmup_probes(again.data_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        again.stop()
        moto.stop()


def test_a_version_that_could_not_load_while_the_store_was_down_loads_when_it_is_back(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    moto = Moto().start()
    flags = ("--housekeeping-interval-s", "0.3")
    srv = s3_server(tmp_path / "data", moto, *flags).start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            assert upload(c, "later", tmp_path / "m.onnx", "m.onnx").status_code == 201
        srv.stop()
        shutil.rmtree(srv.data_dir / "cache" / "models" / "later")  # a new node, or a wiped cache
        moto.stop()
        srv = s3_server(tmp_path / "data", moto, *flags).start()  # starts without its store
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            r = infer(c, "later")
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
            moto.start()
            deadline = time.monotonic() + 30
            while infer(c, "later").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert infer(c, "later").json()["outputs"][0]["data"] == [2, 3, 4, 5]
            assert "now that the storage is back" in srv.log()
    finally:
        srv.stop()
        moto.stop()
