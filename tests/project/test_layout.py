"""The tests' own layout, laid out like the package:

- tests/unit/ mirrors flashml/ (tests/unit/runtime/batching/ tests flashml/runtime/batching/) and starts nothing;
- tests/api/ and tests/console/ run the app in process through Litestar's TestClient;
- tests/e2e/ starts the real server (Granian, the CLI as a subprocess, real sockets), tests/browser/ drives chromium;
- tests/project/ checks the repository (lint, docs, packaging, bench/); tests/security/ keeps its own rules;
- tests/packaging/ builds and installs what packaging/ makes (the executable, the .deb) and lints the Dockerfiles;
- shared helpers live in tests/helpers/ and shared fixtures in a conftest.py, so no test module imports another.
Importing a test module runs it a second time under another name, hides its fixtures' origin behind `# noqa`
imports, and ties one file's helpers to another's tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = TESTS.parent / "flashml"
FOLDERS = {"api", "browser", "console", "e2e", "helpers", "packaging", "project", "security", "unit"}
# Where the real server may start (the `server` fixture, ServerProcess, the CLI as a subprocess) and chromium run.
REAL_SERVER = {"e2e", "browser", "security", "packaging"}
BROWSER = {"browser", "security"}
# Fixtures of tests/conftest.py that start the real server; tests/api/conftest.py gives admin_key, api and adder
# again on the in-process app.
SERVER_FIXTURES = {"server", "admin_key", "api", "adder"}


MARKED_SERVER = re.compile(r"^(pytestmark = .*\bpytest\.mark\.server\b|\s*@pytest\.mark\.server\b)", re.M)


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)


def _folder(path: Path) -> str:
    return path.relative_to(TESTS).parts[0]


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:])


def _imports(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """(line, module) of each import, relative ones made absolute; `from m import n` counts as m and as m.n."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .test_x import y, from . import test_x
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _parsed(path: Path) -> tuple[ast.Module, str]:
    return ast.parse(path.read_text(), str(path)), ".".join(path.relative_to(TESTS.parent).parent.parts)


def _arguments(tree: ast.Module) -> set[str]:
    """Every parameter name of every function: the fixtures the module's tests and fixtures ask for."""
    return {arg.arg for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for arg in node.args.args + node.args.kwonlyargs}


def _own_fixtures(tree: ast.Module) -> set[str]:
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any("fixture" in ast.unparse(d) for d in node.decorator_list)}


def _fixtures_of_conftests(path: Path) -> set[str]:
    """Fixtures defined by the conftest.py files between tests/ (not included) and ``path``'s folder."""
    found: set[str] = set()
    folder = path.parent
    while folder != TESTS:
        conftest = folder / "conftest.py"
        if conftest.exists():
            found |= _own_fixtures(ast.parse(conftest.read_text()))
        folder = folder.parent
    return found


def test_no_test_module_imports_another():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree, package = _parsed(path)
        offenders += [f"{path.relative_to(TESTS.parent)}:{line} imports {name}"
                      for line, name in _imports(tree, package) if _is_test_module(name)]
    assert offenders == [], "move shared helpers to tests/helpers/ and shared fixtures to a conftest.py:\n" + \
        "\n".join(offenders)


def test_no_test_module_sits_directly_in_tests():
    flat = [p.name for p in TESTS.glob("test_*.py")]
    assert flat == [], f"put these in tests/unit/<package>/, api/, console/, e2e/, browser/ or project/: {flat}"


def test_tests_has_only_the_known_folders_each_a_package():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= FOLDERS, f"unknown folders under tests/: {sorted(folders - FOLDERS)}"
    # With __init__.py all the way down, two folders may each have a test_models.py (rootdir import mode).
    missing = sorted(str(p.parent.relative_to(TESTS.parent)) for p in _test_modules()
                     if any(not (folder / "__init__.py").exists()
                            for folder in [p.parent, *p.parent.parents] if TESTS in [folder, *folder.parents]))
    assert missing == [], f"these folders need an __init__.py: {missing}"


def test_unit_folders_mirror_the_package():
    unit = TESTS / "unit"
    strays = [str(p.relative_to(TESTS.parent)) for p in unit.rglob("*") if p.is_dir() and p.name != "__pycache__"
              and not (PACKAGE / p.relative_to(unit)).is_dir()]
    assert strays == [], f"tests/unit/<x>/ must name a package of flashml/: {strays}"
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    unnamed = [p.name for p in unit.glob("test_*.py")
               if not any(p.stem == f"test_{m}" or p.stem.startswith(f"test_{m}_") for m in modules)]
    assert unnamed == [], f"a test directly in tests/unit/ is named after a top-level module of flashml/: {unnamed}"


def test_the_real_server_starts_only_from_e2e_browser_and_security():
    offenders = []
    for path in _test_modules():
        if _folder(path) in REAL_SERVER:
            continue
        tree, package = _parsed(path)
        imported = {name for _, name in _imports(tree, package)}
        starts = imported & {"tests.helpers.server_process.ServerProcess", "tests.helpers.server_process.flashml"}
        # A fixture the module or a conftest below tests/ defines again (tests/api/'s api, say) starts nothing.
        asked = (_arguments(tree) & SERVER_FIXTURES) - _own_fixtures(tree) - _fixtures_of_conftests(path)
        marked = bool(MARKED_SERVER.search(path.read_text()))
        if starts or asked or marked:
            offenders.append(f"{path.relative_to(TESTS.parent)}: {sorted(starts | asked)}{' marked server' * marked}")
    assert offenders == [], "these start the real server: move them to tests/e2e/ or run the app in process " \
        "(tests/helpers/in_process.py):\n" + "\n".join(offenders)


def test_every_e2e_and_browser_module_is_marked_server():
    unmarked = [str(p.relative_to(TESTS.parent)) for p in _test_modules() if _folder(p) in {"e2e", "browser"}
                and not MARKED_SERVER.search(p.read_text())]
    assert unmarked == [], f"`pytest -m 'not server'` would still run these: {unmarked}"


def test_browser_tests_live_in_tests_browser():
    offenders = []
    for path in _test_modules():
        if _folder(path) in BROWSER:
            continue
        tree, package = _parsed(path)
        if {"page", "browser"} & _arguments(tree) or any(name.startswith("playwright")
                                                         for _, name in _imports(tree, package)):
            offenders.append(str(path.relative_to(TESTS.parent)))
    assert offenders == [], f"these drive a browser: move them to tests/browser/: {offenders}"


def test_helpers_live_in_tests_helpers():
    loose = sorted(p.name for p in TESTS.glob("*.py") if p.name not in {"__init__.py", "conftest.py"})
    assert loose == [], f"move these to tests/helpers/: {loose}"


def test_nothing_imports_a_conftest_or_a_test_folder():
    """Fixtures reach tests through conftest.py files, helpers through tests.helpers: never `from tests.conftest
    import ...` or `from tests.browser import ...`, which run a second copy of those fixtures under another name."""
    folders = {f"tests.{name}" for name in FOLDERS - {"helpers"}}
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree, package = _parsed(path)
        offenders += [f"{path.relative_to(TESTS.parent)}:{line} imports {name}"
                      for line, name in _imports(tree, package)
                      if name.split(".")[-1] == "conftest" or name in folders or name.rsplit(".", 1)[0] in folders
                      and not name.rsplit(".", 1)[1].startswith("test_")]
    assert offenders == [], "import helpers from tests.helpers and fixtures through a conftest.py:\n" + \
        "\n".join(offenders)
