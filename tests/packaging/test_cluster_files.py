"""What ships for several nodes (packaging/cluster/, systemd/flashml@.service) is what docs/operations.md shows,
HAProxy accepts its sample, and the template unit and the Kubernetes manifests name real settings and the health
endpoints. tests/e2e/test_cluster.py runs the same HAProxy choices in front of three nodes."""

from __future__ import annotations

import configparser
import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from flashml.settings import Settings
from tests.helpers.cluster import HAPROXY
from tests.helpers.snippets import page_snippets

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["packaging/cluster/haproxy.cfg", "packaging/cluster/nginx.conf", "packaging/cluster/kubernetes.yaml",
           "systemd/flashml@.service"]
SETTINGS = {f"FLASHML_{f.name.upper()}" for f in dataclasses.fields(Settings)}


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read(ROOT / "systemd" / name)
    return unit


@pytest.mark.parametrize("name", SHIPPED)
def test_the_operations_page_shows_each_shipped_file_as_it_is(name):
    shown = [s.code for s in page_snippets(ROOT / "docs" / "operations.md", ROOT) if s.language == "text"]
    assert (ROOT / name).read_text() in shown, f"docs/operations.md no longer shows {name} as it ships"


def test_haproxy_accepts_the_sample_config():
    checked = subprocess.run([HAPROXY, "-c", "-f", str(ROOT / "packaging/cluster/haproxy.cfg")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout


def test_the_load_balancer_samples_check_readiness_and_retry_only_what_is_safe():
    haproxy = (ROOT / "packaging/cluster/haproxy.cfg").read_text()
    assert "option httpchk GET /v2/health/ready" in haproxy
    assert "retry-on conn-failure empty-response" in haproxy and "option http-buffer-request" in haproxy
    assert "http-request disable-l7-retry unless METH_POST inference" in haproxy
    nginx = (ROOT / "packaging/cluster/nginx.conf").read_text()
    # A POST is sent to another node only when it never reached one, except inference, which may be answered twice.
    assert re.search(r"^\s*proxy_next_upstream error timeout;", nginx, re.M)
    assert re.search(r"location ~ \^/v2/models/.*/infer\$ \{\s*proxy_request_buffering on;\s*"
                     r"proxy_next_upstream error timeout non_idempotent;", nginx)


def test_the_template_unit_gives_each_node_its_own_state_name_and_settings_file():
    svc = _unit("flashml@.service")["Service"]
    assert svc["StateDirectory"] == "flashml/%i" and svc["WorkingDirectory"] == "/var/lib/flashml/%i"
    envs = [line.strip() for line in (ROOT / "systemd/flashml@.service").read_text().splitlines()
            if line.startswith(("Environment=", "EnvironmentFile="))]
    assert "Environment=FLASHML_DATA_DIR=/var/lib/flashml/%i" in envs
    assert "Environment=FLASHML_NODE_ID=%H-%i" in envs
    assert envs[-2:] == ["EnvironmentFile=/etc/flashml/cluster.env", "EnvironmentFile=-/etc/flashml/%i.env"]
    assert svc["ExecStart"] == "/opt/flashml/bin/flashml serve" and svc["Restart"] == "on-failure"
    for name, _value in (f.split("=", 1)[1].split("=", 1) for f in envs if f.startswith("Environment=")):
        assert name in SETTINGS, name


def test_the_template_unit_is_hardened_as_the_single_unit_is():
    def hardening(name: str) -> dict[str, str]:
        text = (ROOT / "systemd" / name).read_text()
        section = text.split("# Hardening", 1)[1].split("[Install]", 1)[0]
        return dict(line.split("=", 1) for line in section.splitlines() if "=" in line and not line.startswith("#"))

    assert hardening("flashml@.service") == hardening("flashml.service")
    assert _unit("flashml@.service")["Service"]["DynamicUser"] == "yes"


def test_the_kubernetes_manifests_probe_the_health_endpoints_and_name_real_settings():
    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "packaging/cluster/kubernetes.yaml").read_text())}
    assert set(docs) == {"Secret", "Deployment", "Service"}  # no PersistentVolumeClaim
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert [v for v in pod["volumes"] if "emptyDir" in v]
    names = {e["name"] for e in container["env"]} | set(docs["Secret"]["stringData"])
    assert {n for n in names if n.startswith("FLASHML_")} - SETTINGS - {"FLASHML_S3_ACCESS_KEY",
                                                                        "FLASHML_S3_SECRET_KEY"} == set()
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]


def test_the_documented_cluster_environment_names_real_settings():
    page = (ROOT / "docs" / "operations.md").read_text()
    block = page.split("cluster.env >/dev/null <<'ENV'\n", 1)[1].split("\nENV\n", 1)[0]
    names = {line.split("=", 1)[0] for line in block.splitlines()}
    assert names - SETTINGS == {"PGPASSWORD", "FLASHML_S3_ACCESS_KEY", "FLASHML_S3_SECRET_KEY"}
