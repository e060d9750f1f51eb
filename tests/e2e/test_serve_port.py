"""A second `flashml serve` on a port that one already listens on stops at once with a clear error."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.helpers.server_process import SERVER_FLAGS, ServerProcess

pytestmark = pytest.mark.server


def test_a_port_in_use_stops_the_second_server_before_it_starts(tmp_path):
    first = ServerProcess(tmp_path / "first", *SERVER_FLAGS).start()
    try:
        second = subprocess.run([sys.executable, "-m", "flashml", "serve", "--port", str(first.port), "--data-dir",
                                 str(tmp_path / "second"), *SERVER_FLAGS], capture_output=True, text=True, timeout=30)
        output = second.stdout + second.stderr
        assert second.returncode != 0, output
        assert f"Port {first.port} on 127.0.0.1 is already in use" in second.stderr, output
        # Nothing of the second server started: no setup link, no listener, not even its data directory.
        assert "/setup/" not in output and "Listening at" not in output, output
        assert not (tmp_path / "second").exists()
        assert httpx.get(f"{first.url}/v2/health/ready").status_code == 200
    finally:
        first.stop()
