"""`flashml backup` while the real server runs, `flashml restore` into a new data directory, and a server started on
it: the same answers, users, keys, aliases, jobs and audit; a backup taken during a direct upload; S3 (moto)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from urllib.parse import urljoin

import httpx
import pytest
from minio import Minio

from tests.helpers import onnx_models
from tests.helpers.jobs import csv_dataset, push, run_job
from tests.helpers.s3 import BUCKET, Moto, s3_server
from tests.helpers.s3_server import ACCESS, SECRET
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml, login_token
from tests.helpers.uploads import big_bundle, upload

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery staple"
S3_ENV = {"FLASHML_STORAGE": "s3", "FLASHML_S3_BUCKET": BUCKET, "FLASHML_S3_PREFIX": "site-a",
          "FLASHML_S3_SECURE": "false", "FLASHML_S3_ACCESS_KEY": ACCESS, "FLASHML_S3_SECRET_KEY": SECRET}


def infer(api: httpx.Client, model: str, value: float, version: str | None = None) -> list:
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    tensors = [{"name": n, "datatype": "FP32", "shape": [2, 4], "data": [value] * 8} for n in ("a", "b")]
    r = api.post(path, json={"inputs": tensors})
    assert r.status_code == 200, r.text
    return r.json()["outputs"][0]["data"]


def client(srv: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True):
    """The CLI with extra environment variables (the S3 settings)."""
    proc = subprocess.run([sys.executable, "-m", "flashml", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"flashml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def sign_in(srv: ServerProcess, name: str) -> int:
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/login", data={**login_token(c), "name": name, "password": PASSWORD})
        return r.status_code


def wait_for_log(api: httpx.Client, model: str, count: int) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = api.get(f"/api/v1/models/{model}/predictions", params={"format": "jsonl"}).text.splitlines()
        if len(lines) >= count:
            return lines
        time.sleep(0.2)
    raise AssertionError(f"the prediction log of {model} did not reach {count} lines")


def test_backup_while_serving_then_restore_answers_the_same(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    restored = None
    try:
        key = srv.create_key("backup admin", "admin")
        viewer = srv.create_key("reader", "viewer")
        flashml("users", "create", "alice", "--role", "maintainer", "--password-stdin", "--data-dir",
                str(srv.data_dir), input=f"{PASSWORD}\n")
        with client(srv, key) as api:
            assert upload(api, "adder", onnx_models.offset_add_model(tmp_path / "v1.onnx", 0)).status_code == 201
            assert upload(api, "adder", onnx_models.offset_add_model(tmp_path / "v2.onnx", 100)).status_code == 201
            assert api.put("/api/v1/models/adder/aliases/production", json={"version": 1}).status_code == 200
            assert api.patch("/api/v1/models/adder", json={"prediction_log": {"enabled": True}}).status_code == 200
            answers = {v: infer(api, "adder", 2.0, v) for v in ("1", "2", "production", None)}
            logged = wait_for_log(api, "adder", 4)
            r = push(api, "rows.csv", csv_dataset(5))
            assert r.status_code == 201, r.text
            dataset = r.json()["id"]
            job = run_job(api, model="adder", version="1", dataset=dataset, mapping={"a": "a", "b": "b"})
            assert job["state"] == "succeeded", job
            result = api.get(f"/api/v1/jobs/{job['id']}/result").content
            audit = [(e["action"], e["target"]) for e in api.get("/api/v1/audit", params={"limit": 500}).json()]

            # the backup runs beside the serving server, which goes on answering
            proc = flashml("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir))
            assert infer(api, "adder", 2.0, "production") == answers["production"]
        assert "Copying the database" in proc.stderr and "Backup written to" in proc.stdout
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert manifest["format"] == 1 and manifest["storage"] == "local" and manifest["objects_copied"]
        keys = {o["key"] for o in manifest["objects"]}
        assert {"models/adder/v1/checksums.json", "models/adder/v2/model.onnx", f"datasets/{dataset}/data.csv",
                f"jobs/{job['id']}/result.csv"} <= keys
        assert sorted(k for k in keys if k.startswith("uploads/")) == ["uploads/cli/adder-v1.bin",
                                                                       "uploads/cli/adder-v2.bin"]
        for o in manifest["objects"]:
            data = (tmp_path / "backup" / "objects" / o["key"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == o["sha256"] and len(data) == o["size"]
        assert {tuple(f["path"].split("/")[:3]) for f in manifest["files"]} == {("predictions", "adder", "v1"),
                                                                                ("predictions", "adder", "v2")}
        assert not list((tmp_path).glob(".backup.partial-*"))
        assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700  # it holds key and password hashes

        # restore into a new data directory and serve it: same state, same answers, the old key works
        proc = flashml("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"))
        assert "Restored the backup" in proc.stdout
        assert (tmp_path / "restored").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "restored" / "flashml.db").stat().st_mode & 0o777 == 0o600
        restored = ServerProcess(tmp_path / "restored", *SERVER_FLAGS).start()
        with client(restored, key) as api:
            assert {v: infer(api, "adder", 2.0, v) for v in answers} == answers
            aliases = api.get("/api/v1/models/adder/aliases").json()
            assert [(a["alias"], a["version"]) for a in aliases] == [("production", 1)]
            assert api.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "succeeded"
            assert api.get(f"/api/v1/jobs/{job['id']}/result").content == result
            assert api.get(f"/api/v1/datasets/{dataset}").json()["rows"] == 5
            again = run_job(api, model="adder", version="production", dataset=dataset, mapping={"a": "a", "b": "b"})
            assert again["state"] == "succeeded"  # the restored dataset is read again
            assert api.get("/api/v1/models/adder/predictions", params={"format": "jsonl"}).text.splitlines()[
                :len(logged)] == logged
            events = api.get("/api/v1/audit", params={"limit": 500}).json()
            assert set(audit) <= {(e["action"], e["target"]) for e in events}
            assert any(e["action"] == "backup.restore" and e["actor"] == "cli" for e in events)
        with client(restored, viewer) as reader:
            assert reader.get("/api/v1/models/adder").status_code == 200
            assert reader.delete("/api/v1/models/adder/versions/2").status_code == 403  # still a viewer
        with client(restored, "fml_not-a-key") as stranger:
            assert stranger.get("/api/v1/models").status_code == 401
        assert sign_in(restored, "alice") == 303  # the user and her password came back

        # a restore never writes into a data directory that holds anything
        proc = flashml("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"), check=False)
        assert proc.returncode == 1 and "is not empty" in proc.stderr
        # nor does a backup overwrite one
        proc = flashml("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir), check=False)
        assert proc.returncode == 1 and "already exists" in proc.stderr
    finally:
        srv.stop()
        if restored is not None:
            restored.stop()


def test_a_tampered_backup_is_refused_and_nothing_is_written(tmp_path):
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        key = srv.create_key("backup admin", "admin")
        with client(srv, key) as api:
            assert upload(api, "adder", onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
        flashml("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir))
    finally:
        srv.stop()
    model = tmp_path / "backup" / "objects" / "models" / "adder" / "v1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    (tmp_path / "backup" / "objects" / "uploads" / "cli" / "adder-v1.bin").unlink()
    proc = flashml("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"), check=False)
    assert proc.returncode == 1
    assert "models/adder/v1/model.onnx: changed in the backup" in proc.stderr
    assert "uploads/cli/adder-v1.bin: missing from the backup" in proc.stderr
    assert not (tmp_path / "restored").exists() and not list(tmp_path.glob(".restored.restoring-*"))
    proc = flashml("restore", str(tmp_path), "--data-dir", str(tmp_path / "restored"), check=False)
    assert proc.returncode == 1 and "is not a FlashML backup" in proc.stderr
    proc = flashml("restore", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "restored"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr

    # a backup from a newer FlashML with a newer format, and a damaged manifest, are refused by name
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(json.dumps({**manifest, "format": 2, "flashml_version": "9.0.0"}))
    proc = flashml("restore", str(newer), "--data-dir", str(tmp_path / "restored"), check=False)
    assert proc.returncode == 1 and "is a backup of format 2, made by FlashML 9.0.0" in proc.stderr
    (tmp_path / "backup" / "manifest.json").write_text('{"format": 1, "objects": [')
    proc = flashml("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"), check=False)
    assert proc.returncode == 1 and "is not valid JSON: the backup is damaged" in proc.stderr
    assert not (tmp_path / "restored").exists()


def test_a_backup_taken_during_a_direct_upload_leaves_the_half_upload_out(tmp_path):
    body = big_bundle(tmp_path)
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--upload-part-bytes", str(5 << 20)).start()
    restored = None
    try:
        key = srv.create_key("backup admin", "admin")
        with client(srv, key) as api:
            assert upload(api, "adder", onnx_models.add_model(tmp_path / "add.onnx")).status_code == 201
            answer = infer(api, "adder", 1.0)
            r = api.post("/api/v1/uploads", json={"model": "parts", "filename": "big.tar.gz", "size": len(body),
                                                  "sha256": hashlib.sha256(body).hexdigest()})
            assert r.status_code == 201, r.text
            up = r.json()
            first, *rest = up["parts"]

            def send(p: dict) -> None:
                r = httpx.put(urljoin(srv.url, p["url"]), content=body[p["offset"]:p["offset"] + p["size"]],
                              timeout=60)
                assert r.status_code == 200, r.text

            send(first)
            assert list((srv.data_dir / "incoming").rglob("*"))  # the first part is in the store
            flashml("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir))
            for p in rest:
                send(p)
            r = api.post(up["complete_url"])
            assert r.status_code == 201 and r.json()["state"] == "ready", r.text  # the original finishes it
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert not [o for o in manifest["objects"] if not o["key"].startswith(("models/adder/", "uploads/cli/"))]
        assert not (tmp_path / "backup" / "objects" / "incoming").exists()

        flashml("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"))
        restored = ServerProcess(tmp_path / "restored", *SERVER_FLAGS).start()
        with client(restored, key) as api:
            assert infer(api, "adder", 1.0) == answer
            assert api.get("/api/v1/models/parts").status_code == 404  # the half upload is not there
            state = api.get(f"/api/v1/uploads/{up['id']}").json()
            assert state["state"] == "failed" and state["error"]["code"] == "interrupted", state
            r = api.post(up["complete_url"])
            assert r.status_code == 409 and r.json()["code"] == "upload_not_pending"
            r = httpx.put(urljoin(restored.url, rest[0]["url"]), content=b"x", timeout=60)
            assert r.status_code in (404, 409, 410)  # the upload URL of the half upload leads nowhere
            assert upload(api, "parts", body, "big.tar.gz").status_code == 201  # uploading it again works
        assert not list((tmp_path / "restored" / "incoming").rglob("*"))
    finally:
        srv.stop()
        if restored is not None:
            restored.stop()


def test_s3_backup_lists_objects_and_restore_checks_them_in_the_bucket(tmp_path):
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto).start()
    env = {**S3_ENV, "FLASHML_S3_ENDPOINT": moto.endpoint}
    restored = None
    try:
        key = srv.create_key("backup admin", "admin")
        with client(srv, key) as api:
            assert upload(api, "adder", onnx_models.offset_add_model(tmp_path / "v1.onnx", 7)).status_code == 201
            assert api.put("/api/v1/models/adder/aliases/production", json={"version": 1}).status_code == 200
            answer = infer(api, "adder", 1.0, "production")
        proc = cli("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir), env=env)
        assert "Checking" in proc.stderr and "listed (they stay in the bucket)" in proc.stdout
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert manifest["storage"] == "s3" and not manifest["objects_copied"]
        assert manifest["store"] == f"http://{moto.endpoint}/{BUCKET}/site-a/"
        assert {o["key"] for o in manifest["objects"]} == {"models/adder/v1/checksums.json",
                                                           "models/adder/v1/model.onnx", "uploads/cli/adder-v1.bin"}
        assert not (tmp_path / "backup" / "objects").exists()
        srv.stop()  # one server per bucket: the restored one takes it over

        proc = cli("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "local"), check=False)
        assert proc.returncode == 1 and "restore it with storage = s3" in proc.stderr
        cli("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "restored"), env=env)
        restored = s3_server(tmp_path / "restored", moto).start()
        with client(restored, key) as api:
            assert infer(api, "adder", 1.0, "production") == answer
        restored.stop()

        # an object changed or gone from the bucket is named, and nothing is restored
        s3 = Minio(moto.endpoint, access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1")
        s3.remove_object(BUCKET, "site-a/uploads/cli/adder-v1.bin")
        changed = b"not the model"
        s3.put_object(BUCKET, "site-a/models/adder/v1/checksums.json", io.BytesIO(changed), len(changed))
        proc = cli("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "again"), env=env, check=False)
        assert proc.returncode == 1
        assert "uploads/cli/adder-v1.bin: missing from the store" in proc.stderr
        assert "models/adder/v1/checksums.json: changed in the store" in proc.stderr
        assert not (tmp_path / "again").exists()
    finally:
        srv.stop()
        if restored is not None:
            restored.stop()
        moto.stop()
