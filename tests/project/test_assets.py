"""Front-end assets: pinned from npm, never committed, and no page fetches anything from another host.

That the wheel carries static/vendor/ (built by hatch_build.py) is checked in test_packaging.py, which builds
the wheel once for the suite.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Attributes and CSS that make a browser fetch: src=, href=, url(...), @import, pointing at another host.
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def _shipped_files():
    for top in ("templates", "static"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "vendor" not in path.relative_to(ROOT / top).parts[:1]:
                yield path


def test_pages_and_static_files_load_nothing_from_other_hosts():
    checked = list(_shipped_files())
    assert any(p.name == "base.html" for p in checked)
    offenders = []
    for path in checked:
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in EXTERNAL.finditer(text)]
        if path.suffix == ".js":  # a script may fetch any URL it names
            offenders += [f"{path.relative_to(ROOT)}: {u}" for u in re.findall(r"[\"'`](?:https?:)?//[^\"'`\s]+", text)]
    assert not offenders


def test_base_page_loads_htmx_from_the_package():
    base = (ROOT / "templates" / "base.html").read_text()
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in base
    assert "uPlot" not in base  # only pages that chart load it


def test_frontend_libraries_are_pinned_exactly_in_package_json_and_lockfile():
    deps = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert set(deps) == {"htmx.org", "uplot"}
    assert re.fullmatch(r"2\.0\.\d+", deps["htmx.org"]) and deps["uplot"] == "1.6.32"
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name, version in deps.items():
        assert lock[f"node_modules/{name}"]["version"] == version


def test_git_tracks_no_vendored_code():
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "static/vendor", "node_modules"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert tracked == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", "static/vendor/htmx.min.js"], cwd=ROOT, timeout=60)
    assert ignored.returncode == 0, "static/vendor/ must be in .gitignore"
