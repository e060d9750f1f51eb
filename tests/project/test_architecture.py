"""The package's layers hold: import-linter's contracts (pyproject.toml) and no private name imported across
packages. A red run names the import that broke the rule."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "flashml"


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter comes with the test extras: pip install '.[test]'"
    result = subprocess.run([lint, "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _top_package(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def private_imports_across_packages(package_dir: Path) -> list[str]:
    """``file:line module.name`` for each ``from flashml.<other>... import _name``."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flashml.")):
                continue
            if node.module.split(".")[1] == _top_package(path, package_dir):
                continue
            found += [f"{path.relative_to(package_dir.parent)}:{node.lineno} {node.module}.{alias.name}"
                      for alias in node.names if alias.name.startswith("_")]
    return found


def test_no_private_name_is_imported_across_packages():
    assert private_imports_across_packages(PACKAGE) == []


def test_the_private_name_check_finds_one(tmp_path):
    pkg = tmp_path / "flashml"
    (pkg / "api").mkdir(parents=True)
    (pkg / "registry").mkdir()
    (pkg / "api" / "models.py").write_text("from flashml.registry.manifest import _bundle_path\n")
    (pkg / "registry" / "task_checks.py").write_text("from flashml.registry.manifest import _bundle_path\n")
    assert private_imports_across_packages(pkg) == ["flashml/api/models.py:1 flashml.registry.manifest._bundle_path"]
