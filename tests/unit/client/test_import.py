"""`import flashml.client` stays light: a program that only calls a server loads none of the server's stack."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("onnxruntime", "litestar", "sqlalchemy", "aiosqlite", "granian", "numpy", "onnx", "apscheduler", "argon2",
         "jinja2")


def test_importing_the_client_loads_no_server_parts():
    code = ("import json, sys, flashml.client; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert "httpx" in loaded and "msgspec" in loaded  # the check sees real imports
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    flashml_modules = subprocess.run(
        [sys.executable, "-c", "import sys, flashml.client; print(' '.join(m for m in sys.modules "
                               "if m.startswith('flashml.')))"], capture_output=True, text=True, check=True).stdout
    for part in ("flashml.composition", "flashml.app", "flashml.db", "flashml.runtime", "flashml.inference"):
        assert part not in flashml_modules.split()
