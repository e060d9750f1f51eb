"""The single-file executable and the .deb (packaging/), built once for the module as a user builds them
(packaging/build-binary.sh, then packaging/build-deb.sh), installed with dpkg, and run as the package's system user
in an empty environment: no virtual environment, no PYTHONPATH, nothing on PATH but the system's own folders.

Slow (PyInstaller packs ONNX Runtime, SciPy and pyarrow: about 3 minutes on two cores); `pytest -m "not slow"` leaves
it out, CI runs it. Installing needs root (CI runs as root) or password-less sudo.
"""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flashml import __version__
from tests.helpers.onnx_models import add_model, memory_bomb_model
from tests.helpers.server_process import free_port
from tests.helpers.uploads import upload

pytestmark = [pytest.mark.slow, pytest.mark.server]

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = [] if os.geteuid() == 0 else ["sudo", "-n"]
DATA = Path("/var/lib/flashml")
UNIT = Path("/lib/systemd/system/flashml.service")
# What the installed executable gets: the unit's data directory and a bare PATH, nothing from this test's Python.
BARE_ENV = ("env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", f"HOME={DATA}",
            f"FLASHML_DATA_DIR={DATA}")
GREEDY_LIMIT = 1536 * 1024 * 1024


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, **{"timeout": 600, **kwargs})
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def as_flashml(*args: str) -> list[str]:
    """A command run as the package's system user in the bare environment."""
    runner = ["runuser", "-u", "flashml", "--"] if os.geteuid() == 0 else ["sudo", "-n", "-u", "flashml", "--"]
    return [*runner, *BARE_ENV, *args]


def _processes_of(user: str) -> list[int]:
    """Live processes of ``user`` (read from /proc: procps may be missing from a minimal CI image)."""
    uid, found = pwd.getpwnam(user).pw_uid, []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # it exited
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(int(status.parent.name))
    return found


def _installed_version() -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "flashml"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 and "installed" in proc.stdout.split() else None


@dataclass(frozen=True)
class Built:
    binary: Path
    deb: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    dist, scratch = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("build")
    env = {**os.environ, "PYTHON": sys.executable, "FLASHML_DIST_DIR": str(dist)}
    started = time.monotonic()
    _run([str(ROOT / "packaging" / "build-binary.sh")], env={**env, "FLASHML_BUILD_DIR": str(scratch / "binary")},
         timeout=1800)
    binary_s = time.monotonic() - started
    _run([str(ROOT / "packaging" / "build-deb.sh")], env={**env, "FLASHML_BUILD_DIR": str(scratch / "deb")})
    shutil.rmtree(scratch)  # the throw-away build environment: about a gigabyte
    (deb,) = dist.glob("flashml_*_amd64.deb")
    binary = dist / "flashml"
    print(f"\nbinary {binary.stat().st_size / 1e6:.0f} MB built in {binary_s:.0f} s; "
          f"{deb.name} {deb.stat().st_size / 1e6:.0f} MB")
    return Built(binary, deb)


@pytest.fixture(scope="module")
def installed(built: Built) -> Iterator[Built]:
    assert _installed_version() is None and not DATA.exists(), (
        "a flashml package or /var/lib/flashml is on this machine already: this test installs and purges its own "
        "package, so remove them first (dpkg --purge flashml)")
    _run([*AS_ROOT, "dpkg", "-i", str(built.deb)])
    try:
        yield built
    finally:
        subprocess.run([*AS_ROOT, "dpkg", "--purge", "flashml"], capture_output=True)


def test_the_binary_runs_with_no_python_around(built: Built):
    version = _run(["env", "-i", "PATH=/usr/bin:/bin", str(built.binary), "--version"], cwd="/").stdout
    assert version.strip() == f"flashml, version {__version__}"
    # Frozen, `-m` runs FlashML's own modules (the warm-up child) and nothing else.
    refused = subprocess.run(["env", "-i", str(built.binary), "-m", "http.server"], capture_output=True, text=True)
    assert refused.returncode != 0 and "FlashML's own modules only" in refused.stderr


def test_the_deb_makes_user_data_dir_and_unit_and_starts_nothing(installed: Built):
    user = pwd.getpwnam("flashml")
    assert user.pw_dir == str(DATA) and user.pw_shell == "/usr/sbin/nologin" and user.pw_uid < 1000
    assert grp.getgrgid(user.pw_gid).gr_name == "flashml"
    data = DATA.stat()
    assert data.st_uid == user.pw_uid and stat.S_IMODE(data.st_mode) == 0o700
    assert list(DATA.iterdir()) == []
    env_file = Path("/etc/flashml/flashml.env").stat()
    assert env_file.st_uid == 0 and stat.S_IMODE(env_file.st_mode) == 0o600
    assert Path("/usr/bin/flashml").stat().st_size == installed.binary.stat().st_size

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    svc = unit["Service"]
    assert svc["User"] == "flashml" and svc["ExecStart"] == "/usr/bin/flashml serve"
    assert svc["Environment"] == f"FLASHML_DATA_DIR={DATA}" and svc["StateDirectory"] == "flashml"
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
        assert svc[hardening] == "yes", hardening
    assert svc["ProtectSystem"] == "strict" and svc["CapabilityBoundingSet"] == ""

    # Installed, not enabled, not running: the administrator turns it on. Enabling links the unit into a target's
    # .wants folder (what `systemctl is-enabled` reads, also where systemd itself does not run).
    assert list(Path("/etc/systemd/system").glob("*/flashml.service")) == []
    if shutil.which("systemctl"):
        enabled = subprocess.run(["systemctl", "is-enabled", "flashml.service"], capture_output=True, text=True)
        assert enabled.stdout.strip() == "disabled"
    if Path("/run/systemd/system").is_dir():
        active = subprocess.run(["systemctl", "is-active", "flashml.service"], capture_output=True, text=True)
        assert active.stdout.strip() == "inactive"
    assert _processes_of("flashml") == []


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, f"the installed server exited with {proc.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the installed server was not ready in {timeout} s:\n{log.read_text()}")


def test_the_installed_executable_serves_a_model_as_the_flashml_user(installed: Built, tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(as_flashml("/usr/bin/flashml", "serve", "--port", str(port), "--device", "cpu",
                                           "--validation-memory-bytes", str(GREEDY_LIMIT)),
                                stdout=out, stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    try:
        ready_s = _wait_ready(url, proc, log)
        print(f"\nthe installed executable answered ready {ready_s:.1f} s after it was started")
        assert _processes_of("flashml"), "no process of the flashml user serves"
        key = _run(as_flashml("/usr/bin/flashml", "keys", "create", "--name", "packaging", "--role", "admin"),
                   cwd="/").stdout.strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
            uploaded = upload(api, "adder", add_model(tmp_path / "add.onnx"), "add.onnx")
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["state"] == "ready"
            answer = api.post("/v2/models/adder/infer", json={"inputs": [
                {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [10, 20, 30, 40]}]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["outputs"][0]["data"] == [11.0, 22.0, 33.0, 44.0]
            # The warm-up child (the executable run again with -m) is watched as in a Python install: too greedy
            # a model is stopped at the memory limit.
            greedy = upload(api, "greedy", memory_bomb_model(tmp_path / "greedy.onnx"), "greedy.onnx")
            assert greedy.status_code == 422 and greedy.json()["code"] == "validation_memory", greedy.text
            # The templates and the npm-built static files are inside the executable.
            assert "<form" in api.get("/login").text
            assert api.get("/static/vendor/htmx.min.js").status_code == 200
        # The container image's health check says ready against the same server.
        check = [sys.executable, str(ROOT / "packaging" / "docker" / "healthcheck.py")]
        assert subprocess.run(check, env={"FLASHML_PORT": str(port)}, capture_output=True).returncode == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert subprocess.run(check, env={"FLASHML_PORT": str(port)}, capture_output=True).returncode == 1
    owner = pwd.getpwnam("flashml").pw_uid
    assert (DATA / "flashml.db").stat().st_uid == owner, "the data directory holds files of another user"


def test_remove_keeps_the_data_and_purge_deletes_it_and_the_user(installed: Built):
    (DATA / "kept").write_text("state")
    _run([*AS_ROOT, "dpkg", "--remove", "flashml"])
    assert not Path("/usr/bin/flashml").exists() and (DATA / "kept").exists()
    assert pwd.getpwnam("flashml")
    assert Path("/etc/flashml/flashml.env").exists()  # a conffile stays until purge
    _run([*AS_ROOT, "dpkg", "--purge", "flashml"])
    assert not DATA.exists() and not Path("/etc/flashml/flashml.env").exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("flashml")
    with pytest.raises(KeyError):
        grp.getgrnam("flashml")
    assert _installed_version() is None
