"""The in-process admin commands work on an existing data directory only, and say which one they used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.server_process import ServerProcess

pytestmark = pytest.mark.server


def flashml_in(folder: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """The CLI run from ``folder``, as a user would in another terminal."""
    return subprocess.run([sys.executable, "-m", "flashml", *args], cwd=folder, input=input, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args", [("keys", "create", "--name", "stray", "--role", "admin"),
                                  ("users", "create", "stray", "--password-stdin"),
                                  ("keys", "list"), ("keys", "revoke", "1"), ("keys", "limit", "1", "--burst", "3"),
                                  ("users", "unlock", "stray")])
def test_a_folder_without_a_database_is_refused_and_nothing_is_created(tmp_path, args):
    out = flashml_in(tmp_path, *args, input="long enough password\n")
    assert out.returncode == 1, out
    assert f"{tmp_path / 'flashml-data'} holds no FlashML database" in out.stderr
    assert "--data-dir" in out.stderr and "fml_" not in out.stdout
    assert ("--create" in out.stderr) == (args[1] == "create")  # only the commands that can start one offer it
    assert list(tmp_path.iterdir()) == []


def test_create_starts_a_data_directory_when_asked(tmp_path):
    out = flashml_in(tmp_path, "keys", "create", "--name", "first", "--role", "admin", "--create")
    assert out.returncode == 0, out
    assert out.stdout.strip().startswith("fml_")
    assert f"Data directory: {tmp_path / 'flashml-data'}\n" in out.stderr
    assert (tmp_path / "flashml-data" / "flashml.db").is_file()


def test_a_key_made_in_the_servers_folder_is_one_the_server_accepts(server: ServerProcess, tmp_path):
    made = flashml_in(tmp_path, "keys", "create", "--name", "named-dir", "--role", "viewer", "--data-dir",
                      str(server.data_dir))
    assert made.returncode == 0, made
    assert f"Data directory: {server.data_dir.resolve()}\n" in made.stderr
    me = httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {made.stdout.strip()}"})
    assert me.status_code == 200 and me.json()["key"]["name"] == "named-dir"
    listing = flashml_in(tmp_path, "keys", "list", "--data-dir", str(server.data_dir))
    assert "named-dir" in listing.stdout and f"Data directory: {server.data_dir.resolve()}" in listing.stderr
    assert list(tmp_path.iterdir()) == []
