"""docs/ builds as a site with `mkdocs build --strict`: a broken link or anchor, or a page missing from the
navigation in mkdocs.yml, fails the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=120)


def test_the_docs_build_strictly(tmp_path):
    out = _build(ROOT, tmp_path / "site")
    assert out.returncode == 0, out.stderr
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    built = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")} | {"index"}
    assert pages <= built, f"pages not built: {sorted(pages - built)}"
    assert not list((tmp_path / "site").rglob("*.py")), "the generator's code was published as a page"


@pytest.mark.parametrize("breakage,warning", [
    (("orphan.md", "# Not in the navigation\n"), "orphan.md"),
    (("tasks.md", "\n[a broken link](no-such-page.md)\n"), "no-such-page.md"),
    (("tasks.md", "\n[a broken anchor](batching.md#no-such-section)\n"), "no-such-section"),
])
def test_a_broken_link_or_an_orphan_page_fails_the_build(tmp_path, breakage, warning):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    name, text = breakage
    with (copy / "docs" / name).open("a") as page:
        page.write(text)
    out = _build(copy, tmp_path / "site")
    assert out.returncode != 0 and warning in out.stderr, out.stderr
