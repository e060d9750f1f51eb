"""Where the templates and static files are: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    packaged = _HERE / name  # the wheel carries them inside the package
    return packaged if packaged.is_dir() else _HERE.parent / name


TEMPLATES_DIR = _find("templates")
STATIC_DIR = _find("static")
