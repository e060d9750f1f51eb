"""Scratch space on local disk under ``data_dir/tmp``: uploads being received, bundles being validated.

``tmp/`` shares the data directory's file system, so the local store can publish from it with one rename.
Everything in it belongs to work in progress: a start-up clears it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

_SUBDIRS = ("uploads", "staging", "trash", "store")


class ScratchSpace:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "tmp"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # private whatever the umask
        for sub in _SUBDIRS:
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)

    def new_upload_path(self) -> Path:
        return self.root / "uploads" / f"{uuid.uuid4().hex}.part"

    def new_staging_dir(self) -> Path:
        return self.root / "staging" / uuid.uuid4().hex

    def clear(self) -> None:
        """Remove what an interrupted upload or validation left (called at start-up)."""
        for sub in _SUBDIRS:
            for entry in (self.root / sub).iterdir():
                remove_path(entry)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
