"""Versions over time: archive, delete (and refusal while in use), restart, crash recovery, shutdown."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.helpers import onnx_models
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess
from tests.helpers.uploads import leftovers, upload, warmup_probes

pytestmark = pytest.mark.server

A = {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
B = {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}


def _client(srv: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_archive_restore_and_delete(api, server, tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    for _ in range(2):
        assert upload(api, "life", tmp_path / "m.onnx").status_code == 201
    assert api.post("/v2/models/life/versions/1/infer", json={"inputs": [A, B]}).status_code == 200

    # v1 just answered: deleting it needs force
    r = api.delete("/api/v1/models/life/versions/1")
    assert r.status_code == 409 and r.json()["code"] == "version_in_use"

    archived = api.post("/api/v1/models/life/versions/1/archive").json()
    assert archived["state"] == "archived" and not archived["loaded"]
    r = api.post("/v2/models/life/versions/1/infer", json={"inputs": [A, B]})
    assert r.status_code == 409 and r.json()["code"] == "version_not_ready"
    assert api.post("/api/v1/models/life/versions/1/restore").json()["state"] == "ready"
    assert api.post("/v2/models/life/versions/1/infer", json={"inputs": [A, B]}).status_code == 200

    assert api.delete("/api/v1/models/life/versions/1", params={"force": "true"}).status_code == 204
    assert api.get("/api/v1/models/life/versions/1").status_code == 404
    assert not (server.data_dir / "models" / "life" / "v1").exists()
    assert api.post("/v2/models/life/versions/1/infer", json={"inputs": [A, B]}).status_code == 404

    # v2 was never called: it deletes without force, and then the whole model goes
    assert api.delete("/api/v1/models/life/versions/2").status_code == 204
    assert api.delete("/api/v1/models/life").status_code == 204
    assert api.get("/api/v1/models/life").status_code == 404
    assert not (server.data_dir / "models" / "life").exists()
    actions = [e["action"] for e in api.get("/api/v1/audit").json()]
    assert {"version.archive", "version.restore", "version.delete", "model.delete"} <= set(actions)


def test_delete_model_in_use_needs_force(api, tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    assert upload(api, "busy", tmp_path / "m.onnx").status_code == 201
    assert api.post("/v2/models/busy/infer", json={"inputs": [A, B]}).status_code == 200
    r = api.delete("/api/v1/models/busy")
    assert r.status_code == 409 and r.json()["code"] == "model_in_use"
    assert api.delete("/api/v1/models/busy", params={"force": True}).status_code == 204


def test_restart_loads_models_and_a_crash_mid_validation_leaves_no_version(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    onnx_models.hang_model(tmp_path / "hang.onnx")
    flags = [f for f in SERVER_FLAGS]
    flags[flags.index("--upload-wait-s") + 1] = "1"
    flags[flags.index("--validation-timeout-s") + 1] = "120"
    srv = ServerProcess(tmp_path / "data", *flags).start()
    key = srv.create_key()
    try:
        with _client(srv, key) as c:
            r = upload(c, "keep", tmp_path / "m.onnx")  # 202 on a busy machine: validation outlasts the 1 s wait
            assert r.status_code in (201, 202), r.text
            deadline = time.monotonic() + 60
            while c.get("/api/v1/models/keep/versions/1").json()["state"] == "validating":
                assert time.monotonic() < deadline, "validation of a tiny model should finish"
                time.sleep(0.2)
            assert c.get("/api/v1/models/keep/versions/1").json()["state"] == "ready"
            r = upload(c, "hangs", tmp_path / "hang.onnx")
            assert r.status_code == 202 and r.json()["state"] == "validating"
            assert r.headers["location"] == "/api/v1/models/hangs/versions/1"
            time.sleep(1.0)  # the warm-up subprocess is running now
        probes = warmup_probes(srv.data_dir)
        assert probes, "the warm-up subprocess should be running"
        # kill -9 the worker process that runs the app (as the OOM killer would): its probe must not outlive it
        with open(f"/proc/{probes[0]}/stat") as f:
            worker = int(f.read().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        srv.signal(signal.SIGKILL)
        srv.proc.wait(10)
        deadline = time.monotonic() + 10
        while warmup_probes(srv.data_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert warmup_probes(srv.data_dir) == []
    finally:
        srv.stop()
    again = ServerProcess(tmp_path / "data", *flags).start()
    try:
        with _client(again, key) as c:
            assert c.post("/v2/models/keep/infer", json={"inputs": [A, B]}).json()["outputs"][0]["data"] == \
                [2, 3, 4, 5]
            v = c.get("/api/v1/models/hangs/versions/1").json()
            assert v["state"] == "failed" and v["errors"][0]["code"] == "interrupted"
            assert not (again.data_dir / "models" / "hangs").exists()
            assert leftovers(again.data_dir) == []
    finally:
        again.stop()


def test_sigterm_finishes_the_request_in_flight(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    body = (tmp_path / "m.onnx").read_bytes()
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    key = srv.create_key()
    result: dict = {}

    def slow_body():
        for i in range(0, len(body), 16):
            if i >= len(body) // 2 and "sent_some" not in result:
                result["sent_some"] = time.monotonic()
            time.sleep(0.02)
            yield body[i:i + 16]

    def send():
        with _client(srv, key) as c:
            result["response"] = c.post("/api/v1/models/graceful/versions", content=slow_body(),
                                        headers={"Content-Length": str(len(body))})

    t = threading.Thread(target=send)
    t.start()
    while "sent_some" not in result:
        time.sleep(0.01)
    srv.signal(signal.SIGTERM)
    t.join(60)
    code = srv.proc.wait(60)
    assert result["response"].status_code == 201, result["response"].text
    assert code == 0


def test_body_limits_are_413(tmp_path):
    onnx_models.add_model(tmp_path / "m.onnx")
    srv = ServerProcess(tmp_path / "data", *SERVER_FLAGS, "--max-upload-bytes", "100",
                        "--max-request-bytes", "300").start()
    key = srv.create_key()
    try:
        with _client(srv, key) as c:
            r = upload(c, "big", tmp_path / "m.onnx")
            assert r.status_code == 413 and r.json()["code"] == "upload_too_large"

            def chunked():  # no Content-Length: the limit is enforced on the bytes as they arrive
                yield (tmp_path / "m.onnx").read_bytes()

            r = c.post("/api/v1/models/big/versions", content=chunked())
            assert r.status_code == 413 and r.json()["error"]
            assert c.get("/api/v1/models/big").status_code == 404
            assert leftovers(srv.data_dir) == []
            r = c.post("/v2/models/big/infer", json={"inputs": [A, B], "pad": "x" * 400})
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

            def chunked_infer():  # no Content-Length on the inference path either
                yield b'{"inputs": [], "pad": "'
                yield b"x" * 400
                yield b'"}'

            r = c.post("/v2/models/big/infer", content=chunked_infer())
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    finally:
        srv.stop()
