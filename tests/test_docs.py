"""The docs/ tree: the reference pages are what the code gives, and the generator runs as the pages say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docs.generate import DOCS, PAGES, REGENERATE
from flashml.cli import main as flashml_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_page_matches_the_code(name):
    page = DOCS / name
    assert page.is_file() and page.read_text() == PAGES[name](), \
        f"docs/{name} is out of date with the code: run `{REGENERATE}` from the repository root and commit it"


def test_the_cli_page_has_a_section_for_every_command():
    text = (DOCS / "cli.md").read_text()
    for group in ("models", "keys", "users", "jobs", "datasets"):
        for name in flashml_command.commands[group].commands:
            assert f" flashml {group} {name}\n" in text, f"flashml {group} {name} is missing from docs/cli.md"
    assert "#### flashml models alias set\n" in text


def test_the_regenerate_command_runs_from_the_repository_root():
    # The command the drift messages print must work as written (a --check writes nothing).
    out = subprocess.run([sys.executable, "-m", "docs.generate", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
