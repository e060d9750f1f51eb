"""The docs/ tree: the reference pages are what the code gives, and the generator runs as the pages say."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from docs.generate import DOCS, PAGES, REGENERATE
from flashml.cli import main as flashml_command
from flashml.registry.manifest import parse_manifest

ROOT = Path(__file__).resolve().parents[2]


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


def _blocks(language: str) -> list[tuple[str, str]]:
    return [(page.name, block) for page in sorted(DOCS.glob("*.md"))
            for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)]


def test_every_documented_manifest_is_one_flashml_accepts(tmp_path):
    # The files the examples name, as their bundle would hold them.
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    (tmp_path / "samples").mkdir()
    np.save(tmp_path / "samples" / "shape.npy", np.array([1, 2], np.int64))
    blocks = _blocks("toml")
    assert len(blocks) >= 6
    for page, block in blocks:
        try:
            parse_manifest(tomllib.loads(block), tmp_path)
        except Exception as exc:
            pytest.fail(f"a manifest example in docs/{page} is refused: {exc}\n{block}")


def test_every_documented_json_body_is_json():
    for page, block in _blocks("json"):
        try:
            json.loads(block)
        except ValueError as exc:
            pytest.fail(f"a JSON example in docs/{page} is not JSON: {exc}\n{block}")
