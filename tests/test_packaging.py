"""What ships: the systemd unit is hardened; templates and static files reach the wheel."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_systemd_unit_is_hardened_and_runs_serve():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "systemd" / "flashml.service")
    svc = unit["Service"]
    assert svc["ExecStart"].endswith("flashml serve")
    assert svc["Restart"] == "on-failure" and svc["StateDirectory"] == "flashml"
    assert svc["DynamicUser"] == "yes" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["Environment"] == "FLASHML_DATA_DIR=/var/lib/flashml"


def test_wheel_carries_templates_and_static(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("flashml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flashml/templates/base.html" in names and "flashml/templates/setup.html" in names
    assert "flashml/static/flashml.css" in names
    assert not any("tests/" in n for n in names)
