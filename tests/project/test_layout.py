"""The tests' own layout: shared helpers live in tests/helpers/ (or a plain module beside the tests) and shared
fixtures in a conftest.py, so no test module imports another. Importing a test module runs it a second time under
another name, hides its fixtures' origin behind `# noqa` imports, and ties one file's helpers to another's tests."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:])


def _test_modules_imported(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """(line, module) of each import of a test module: import tests.test_x, from tests.test_x import y,
    from tests import test_x, and the relative forms."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .test_x import y, from . import test_x
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if _is_test_module(base):
                found.append((node.lineno, base))
            else:
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                          if _is_test_module(f"{base}.{alias.name}")]
    return found


def test_no_test_module_imports_another():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        for line, name in _test_modules_imported(ast.parse(path.read_text(), str(path)), package):
            offenders.append(f"{path.relative_to(TESTS.parent)}:{line} imports {name}")
    assert offenders == [], "move shared helpers to tests/helpers/ and shared fixtures to a conftest.py:\n" + \
        "\n".join(offenders)
