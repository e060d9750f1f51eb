"""What ships: the systemd unit is hardened; templates and static files reach the wheel."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_systemd_unit_is_hardened_and_runs_serve():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "systemd" / "flashml.service")
    svc = unit["Service"]
    assert svc["ExecStart"].endswith("flashml serve")
    assert svc["Restart"] == "on-failure" and svc["StateDirectory"] == "flashml"
    assert svc["DynamicUser"] == "yes" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["Environment"] == "FLASHML_DATA_DIR=/var/lib/flashml"


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    """Build the wheel once for this module (an isolated build; runs `npm ci` through hatch_build.py if needed)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(out), str(ROOT)], check=True, timeout=600)
    (wheel,) = out.glob("flashml-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_carries_templates_and_static(wheel_names):
    names = wheel_names
    assert "flashml/templates/base.html" in names and "flashml/templates/setup.html" in names
    assert "flashml/static/flashml.css" in names
    assert not any("tests/" in n for n in names)


def test_wheel_carries_vendored_frontend_libraries(wheel_names):
    vendor = {n.removeprefix("flashml/static/vendor/") for n in wheel_names if n.startswith("flashml/static/vendor/")}
    assert vendor == {"htmx.min.js", "htmx.LICENSE", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}
