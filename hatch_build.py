"""Hatchling build hook: copy the front-end libraries from npm into static/vendor/ before the wheel is built.

The libraries (htmx, uPlot) are pinned in package.json and package-lock.json; git never holds a copy of them.
When a wheel (or an editable wheel) is built, this hook runs `npm ci` if node_modules/ is missing or older than
the lockfile, then copies the few files the pages use, with each package's licence, into static/vendor/.
The wheel's force-include of `static` (collected after this hook) ships them as flashml/static/vendor/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NPM_CI = ["ci", "--ignore-scripts", "--no-audit", "--no-fund"]

# (file under node_modules/, name under static/vendor/)
ASSETS = [
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("htmx.org/LICENSE", "htmx.LICENSE"),
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("uplot/LICENSE", "uPlot.LICENSE"),
]


def _node_modules_stale(root: Path) -> bool:
    """True when node_modules/ is missing, lacks a file we copy, or is older than package-lock.json."""
    node_modules = root / "node_modules"
    lockfile = root / "package-lock.json"
    if not all((node_modules / src).is_file() for src, _ in ASSETS):
        return True
    # npm writes node_modules/.package-lock.json on every install; fall back to the directory itself.
    installed = node_modules / ".package-lock.json"
    stamp = installed if installed.is_file() else node_modules
    return lockfile.is_file() and stamp.stat().st_mtime < lockfile.stat().st_mtime


def vendor_assets(root: Path, log=print) -> Path:
    """Fill root/static/vendor/ from node_modules/, running `npm ci` first when needed. Returns the directory."""
    vendor = root / "static" / "vendor"
    have_vendor = all((vendor / dst).is_file() for _, dst in ASSETS)
    if _node_modules_stale(root):
        npm = shutil.which("npm")
        if npm is None:
            if have_vendor:
                log("flashml build: npm not found; using the files already in static/vendor/")
                return vendor
            raise RuntimeError(
                "Building FlashML from source needs Node.js and npm: the front-end libraries (htmx, uPlot) are "
                "installed from the npm registry (package.json, package-lock.json) and copied into the wheel. "
                "Install Node.js (which includes npm) and build again."
            )
        if not (root / "package-lock.json").is_file():
            raise RuntimeError(f"package-lock.json is missing from {root}; cannot install the front-end libraries")
        log("flashml build: npm " + " ".join(NPM_CI))
        subprocess.run([npm, *NPM_CI], cwd=root, check=True)
    vendor.mkdir(parents=True, exist_ok=True)
    for old in vendor.iterdir():  # exactly these files: nothing left over from an older set
        if old.is_file() and old.name not in {dst for _, dst in ASSETS}:
            old.unlink()
    for src, dst in ASSETS:
        shutil.copyfile(root / "node_modules" / src, vendor / dst)
    return vendor


class AssetsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":  # the sdist ships package.json and the lockfile, not the built files
            return
        vendor_assets(Path(self.root), log=self.app.display_info)
