"""The model store on local disk, under the data directory.

Layout: ``models/<model>/v<version>/`` holds one published, immutable version; ``tmp/`` holds uploads
being received and bundles being validated. ``tmp/`` and ``models/`` share a file system, so
publication is one ``os.rename``: a crash leaves either no version directory or a complete one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


class LocalModelStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.models = data_dir / "models"
        self.tmp = data_dir / "tmp"
        for d in (self.models, self.tmp / "uploads", self.tmp / "staging", self.tmp / "trash"):
            d.mkdir(parents=True, exist_ok=True)

    def new_upload_path(self) -> Path:
        return self.tmp / "uploads" / f"{uuid.uuid4().hex}.part"

    def new_staging_dir(self) -> Path:
        return self.tmp / "staging" / uuid.uuid4().hex

    def version_dir(self, model: str, version: int) -> Path:
        return self.models / model / f"v{version}"

    def publish(self, staging: Path, model: str, version: int) -> Path:
        """Move a validated bundle into place in one atomic rename."""
        target = self.version_dir(model, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # left by a crash after rename and before the record said ready
            self._discard(target)
        os.rename(staging, target)
        return target

    def delete_version(self, model: str, version: int) -> None:
        target = self.version_dir(model, version)
        if target.exists():
            self._discard(target)
        parent = target.parent
        if parent.exists() and not any(parent.iterdir()):
            parent.rmdir()

    def published(self) -> list[tuple[str, int]]:
        """Every (model, version) directory on disk."""
        found = []
        for model_dir in self.models.iterdir() if self.models.exists() else []:
            for vdir in model_dir.iterdir() if model_dir.is_dir() else []:
                if vdir.name.startswith("v") and vdir.name[1:].isdigit():
                    found.append((model_dir.name, int(vdir.name[1:])))
        return found

    def clear_tmp(self) -> None:
        """Remove what an interrupted upload or validation left (called at start-up)."""
        for sub in ("uploads", "staging", "trash"):
            for entry in (self.tmp / sub).iterdir():
                remove_path(entry)

    def _discard(self, path: Path) -> None:
        # Rename first so the version disappears at once, then delete at leisure.
        trash = self.tmp / "trash" / uuid.uuid4().hex
        os.rename(path, trash)
        remove_path(trash)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
