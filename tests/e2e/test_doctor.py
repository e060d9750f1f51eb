"""`flashml doctor` as a user runs it, against the real server over HTTP and on a data directory it cannot write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from flashml.ops import doctor_runtime
from flashml.runtime.devices import cuda_works
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, flashml

pytestmark = pytest.mark.server


def test_a_running_server_with_its_own_settings_is_healthy(tmp_path):
    server = ServerProcess(tmp_path / "data", *SERVER_FLAGS).start()
    try:
        out = flashml("doctor", "--json", "--data-dir", str(server.data_dir), "--port", str(server.port),
                      "--device", "cpu", "--min-free", "1", check=False)
        result = json.loads(out.stdout)
        rows = {c["name"]: c for c in result["checks"]}
        assert out.returncode == 0, out.stdout
        assert rows["server"]["status"] == "ok" and "answers at http://127.0.0.1:" in rows["server"]["message"]
        # The same port on every address, in clear text: a warning (exit 1), the server still found.
        out = flashml("doctor", "--data-dir", str(server.data_dir), "--host", "0.0.0.0", "--port", str(server.port),
                      "--device", "cpu", "--min-free", "1", check=False)
        assert out.returncode == 1 and "without TLS" in out.stdout and "exit status 1" in out.stdout
        # The default device (auto) on a machine without a GPU driver is a CPU node: still healthy, exit 0.
        # A device that asks for CUDA the machine cannot give fails (exit 2), saying why.
        gpu_box = doctor_runtime.driver_present() and cuda_works(0)
        auto = flashml("doctor", "--json", "--data-dir", str(server.data_dir), "--port", str(server.port),
                       "--min-free", "1", check=False)
        cuda = flashml("doctor", "--json", "--data-dir", str(server.data_dir), "--port", str(server.port),
                       "--device", "cuda", "--min-free", "1", check=False)
        if not doctor_runtime.driver_present():
            assert auto.returncode == 0, auto.stdout
            rows = {c["name"]: c for c in json.loads(cuda.stdout)["checks"]}
            assert cuda.returncode == 2 and json.loads(cuda.stdout)["exit_code"] == 2
            assert rows["gpu"]["status"] == "fail" and rows["cuda"]["status"] == "fail"
            assert rows["server"]["status"] == "ok"
        elif gpu_box:  # a machine with a working GPU: both settings are healthy
            assert auto.returncode == 0 and cuda.returncode == 0, (auto.stdout, cuda.stdout)
    finally:
        server.stop()


def test_a_data_dir_this_user_cannot_write_fails(tmp_path):
    for folder in (tmp_path, *tmp_path.parents):  # pytest's folders are private: let the other user reach ours
        if os.geteuid() == 0 and folder != folder.parent:
            folder.chmod(folder.stat().st_mode | 0o005)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    args = [sys.executable, "-m", "flashml", "doctor", "--json", "--data-dir", str(data), "--device", "cpu"]
    if os.geteuid() == 0:  # root writes anywhere: run the doctor as nobody on root's private folder
        args = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]
    else:
        data.chmod(0o500)
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert out.stdout, out.stderr
    rows = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert out.returncode == 2
    assert rows["data_dir_writable"]["status"] == "fail" and "cannot write in" in rows["data_dir_writable"]["message"]
