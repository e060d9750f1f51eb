"""Direct uploads over real HTTP: ask for a URL, PUT the bytes there, complete; local disk and S3 (moto)."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urljoin

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.s3 import Moto, objects, s3_server
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml
from tests.helpers.uploads import big_bundle, leftovers

pytestmark = pytest.mark.server

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}


def start(c: httpx.Client, model: str, body: bytes, filename="model.onnx", sha256: str | None = "auto") -> dict:
    digest = hashlib.sha256(body).hexdigest() if sha256 == "auto" else sha256
    payload = {"model": model, "filename": filename, "size": len(body)}
    if digest:
        payload["sha256"] = digest
    r = c.post("/api/v1/uploads", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def send(c: httpx.Client, up: dict, body: bytes) -> httpx.Response:
    """PUT the bytes as any client would: no FlashML key, the URL carries its own authorisation."""
    return httpx.put(urljoin(str(c.base_url), up["url"]), content=body, timeout=60)


def test_local_direct_upload_publishes_and_keeps_the_bundle(api, server, tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    body = (tmp_path / "m.onnx").read_bytes()
    up = start(api, "direct", body, "add.onnx")
    assert up["storage"] == "local" and up["state"] == "pending" and up["method"] == "PUT"
    assert up["url"].startswith(f"/api/v1/uploads/{up['id']}/data?token=")
    assert api.get("/api/v1/models/direct").status_code == 404  # nothing is a version before complete
    r = send(api, up, body)
    assert r.status_code == 200 and r.json()["received_bytes"] == len(body)
    r = api.post(up["complete_url"])
    assert r.status_code == 201, r.text
    assert (r.json()["model"], r.json()["version"], r.json()["state"]) == ("direct", 1, "ready")
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert (server.data_dir / "uploads" / "cli" / "direct-v1.onnx").read_bytes() == body
    assert (server.data_dir / "models" / "direct" / "v1" / "model.onnx").is_file()
    assert not list((server.data_dir / "incoming").iterdir())
    assert api.post("/v2/models/direct/infer", json={"inputs": [A, B]}).status_code == 200
    state = api.get(f"/api/v1/uploads/{up['id']}").json()
    assert state["state"] == "done" and state["version"] == 1
    again = api.post(up["complete_url"])
    assert again.status_code == 409 and again.json()["code"] == "upload_not_pending"
    assert leftovers(server.data_dir) == []


def test_local_direct_upload_refusals(api, server, tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    body = (tmp_path / "m.onnx").read_bytes()
    for payload, code in (({"model": "x", "filename": "m.onnx", "size": 0}, "bad_size"),
                          ({"model": "x", "filename": "m.onnx", "size": 10, "sha256": "abc"}, "bad_sha256"),
                          ({"model": "../x", "filename": "m.onnx", "size": 10}, "bad_model_name"),
                          ({"model": "x", "filename": "a/b.onnx", "size": 10}, "bad_filename"),
                          ({"model": "x", "filename": "m.onnx", "size": 10, "extra": 1}, "malformed_request")):
        r = api.post("/api/v1/uploads", json=payload)
        assert r.status_code == 400 and r.json()["code"] == code, (payload, r.text)
    r = api.post("/api/v1/uploads", json={"model": "x", "filename": "m.onnx", "size": 10**15})
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large"

    up = start(api, "refused", body)
    r = api.post(up["complete_url"])  # nothing sent yet: stays pending
    assert r.status_code == 409 and r.json()["code"] == "upload_incomplete"
    bad_token = up["url"].split("token=")[0] + "token=wrong"
    assert httpx.put(urljoin(str(api.base_url), bad_token), content=body).status_code == 404
    r = send(api, up, body + b"more")
    assert r.status_code == 400 and r.json()["code"] == "size_mismatch"
    assert send(api, up, body).status_code == 200
    assert api.post(up["complete_url"]).status_code == 201  # completes after the retry

    # the bytes do not hash to what the client declared: refused, and no version is made
    up = start(api, "tampered", body, sha256=hashlib.sha256(b"something else").hexdigest())
    assert send(api, up, body).status_code == 200
    r = api.post(up["complete_url"])
    assert r.status_code == 400 and r.json()["code"] == "checksum_mismatch", r.text
    assert api.get("/api/v1/models/tampered").status_code == 404
    assert api.get(f"/api/v1/uploads/{up['id']}").json()["state"] == "failed"
    assert not list((server.data_dir / "incoming").iterdir())

    # a file that is no model: validated as any upload, refused with its reason
    junk = b"not a model\n" * 50
    up = start(api, "junk", junk, sha256=None)
    assert send(api, up, junk).status_code == 200
    r = api.post(up["complete_url"])
    assert r.status_code == 422 and r.json()["code"] == "not_onnx"
    assert api.get(f"/api/v1/uploads/{up['id']}").json()["state"] == "failed"
    assert leftovers(server.data_dir) == []


def test_expired_uploads_are_refused_and_cleaned_up(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    body = (tmp_path / "m.onnx").read_bytes()
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--upload-session-ttl-s", "1",
                        "--housekeeping-interval-s", "0.2").start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            up = start(c, "late", body)
            assert send(c, up, body).status_code == 200
            assert (srv.data_dir / "incoming" / up["id"]).is_file()
            deadline = time.monotonic() + 20
            while c.get(f"/api/v1/uploads/{up['id']}").json()["state"] != "expired" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.get(f"/api/v1/uploads/{up['id']}").json()["state"] == "expired"
            r = c.post(up["complete_url"])
            assert r.status_code == 410 and r.json()["code"] == "upload_expired"
            assert not (srv.data_dir / "incoming" / up["id"]).exists()
            assert c.get("/api/v1/models/late").status_code == 404
            # an abandoned upload's bytes with no session at all (a crash) are removed too
            (srv.data_dir / "incoming" / "stray").write_bytes(b"x")
            while (srv.data_dir / "incoming" / "stray").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not (srv.data_dir / "incoming" / "stray").exists()
    finally:
        srv.stop()


def test_s3_direct_upload_goes_straight_to_the_bucket(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    body = (tmp_path / "m.onnx").read_bytes()
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto).start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            up = start(c, "presigned", body, "add.onnx")
            assert up["storage"] == "s3"
            assert up["url"].startswith(f"http://{moto.endpoint}/flashml-e2e/site-a/incoming/{up['id']}?")
            assert "X-Amz-Signature=" in up["url"]
            assert send(c, up, body).status_code == 200  # straight to the store, not through FlashML
            assert objects(moto) == [f"site-a/incoming/{up['id']}"]
            r = c.post(up["complete_url"])
            assert r.status_code == 201 and r.json()["state"] == "ready", r.text
            assert objects(moto) == ["site-a/models/presigned/v1/checksums.json",
                                     "site-a/models/presigned/v1/model.onnx", "site-a/uploads/cli/presigned-v1.onnx"]
            assert c.post("/v2/models/presigned/infer", json={"inputs": [A, B]}).status_code == 200

            moto.stop()  # the store is down: new uploads and completions answer 503 at once
            r = c.post("/api/v1/uploads", json={"model": "presigned", "filename": "m.onnx", "size": len(body)})
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable"
            assert c.post("/v2/models/presigned/infer", json={"inputs": [A, B]}).status_code == 200
            moto.start()
            up = start(c, "presigned", body)
            assert send(c, up, body).status_code == 200
            assert c.post(up["complete_url"]).json()["version"] == 2
            assert leftovers(srv.data_dir) == []
    finally:
        srv.stop()
        moto.stop()


def send_parts(c: httpx.Client, up: dict, body: bytes, skip: int | None = None) -> None:
    for p in up["parts"]:
        if p["part"] != skip:
            r = httpx.put(urljoin(str(c.base_url), p["url"]), content=body[p["offset"]:p["offset"] + p["size"]],
                          timeout=60)
            assert r.status_code == 200, r.text


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_big_files_go_in_parts(tmp_path, storage):
    body = big_bundle(tmp_path)
    moto = Moto().start() if storage == "s3" else None
    part_flags = ("--upload-part-bytes", str(5 << 20))
    srv = (s3_server(tmp_path / "data", moto, *part_flags) if moto else
           ServerProcess(tmp_path / "data", *SERVER_FLAGS, *part_flags)).start()
    try:
        key = srv.create_key()
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            up = start(c, "parts", body, "big.tar.gz")
            assert up["url"] is None and [p["part"] for p in up["parts"]] == [1, 2, 3]
            assert sum(p["size"] for p in up["parts"]) == len(body)
            if moto:
                assert all("uploadId=" in p["url"] and p["url"].startswith("http://") for p in up["parts"])
            send_parts(c, up, body, skip=2)
            r = c.post(up["complete_url"])  # a part is missing: refused, still pending
            assert r.status_code == 409 and r.json()["code"] == "upload_incomplete", r.text
            send_parts(c, up, body)
            r = c.post(up["complete_url"])
            assert r.status_code == 201 and r.json()["state"] == "ready", r.text
            assert r.json()["size_bytes"] == len(body)
            if moto:
                assert objects(moto) == ["site-a/models/parts/v1/checksums.json", "site-a/models/parts/v1/model.onnx",
                                         "site-a/models/parts/v1/padding.bin", "site-a/uploads/cli/parts-v1.tar.gz"]
            else:
                assert (srv.data_dir / "uploads" / "cli" / "parts-v1.tar.gz").read_bytes() == body
                assert not list((srv.data_dir / "incoming").iterdir())
            assert leftovers(srv.data_dir) == []
    finally:
        srv.stop()
        if moto:
            moto.stop()


def test_cli_push_sends_a_big_file_straight_to_s3_in_parts(tmp_path):
    (tmp_path / "big.tar.gz").write_bytes(big_bundle(tmp_path))
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto, "--upload-part-bytes", str(5 << 20)).start()
    try:
        key = srv.create_key()
        out = flashml("models", "push", str(tmp_path / "big.tar.gz"), "--name", "pushed", "--url", srv.url,
                      "--key", key)
        assert "pushed v1 is ready" in out.stdout
        assert "Hashing big.tar.gz" in out.stderr and "Uploading big.tar.gz" in out.stderr
        assert "site-a/uploads/cli/pushed-v1.tar.gz" in objects(moto)
        assert not [o for o in objects(moto) if "/incoming/" in o]
    finally:
        srv.stop()
        moto.stop()
