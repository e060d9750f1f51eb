"""README's quickstart, run as written (only the port changes): the steps a new user types."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server
README = Path(__file__).resolve().parents[2] / "README.md"


def _quickstart_block() -> str:
    section = README.read_text().split("## Five-minute quickstart", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_quickstart_runs(tmp_path):
    srv = ServerProcess(tmp_path / "flashml-data", *SERVER_FLAGS).start()
    try:
        script = _quickstart_block().replace("127.0.0.1:8000", f"127.0.0.1:{srv.port}")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        docs, text, dec = [], out.stdout.strip(), json.JSONDecoder()
        while text:  # curl prints the two JSON answers back to back
            doc, end = dec.raw_decode(text)
            docs.append(doc)
            text = text[end:].strip()
        uploaded, answer = docs
        assert uploaded["state"] == "ready" and uploaded["version"] == 1
        assert answer["model_name"] == "adder" and answer["outputs"][0]["data"] == [11.0, 22.0, 33.0, 44.0]
    finally:
        srv.stop()
