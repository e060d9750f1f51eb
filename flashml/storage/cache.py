"""The node-local cache that ONNX Runtime loads from: canonical version folders, checked by sha256.

A version folder (``models/<model>/v<version>/``) is filled from the artifact store on demand and each file
is checked against the sha256 recorded at publication. A folder whose files no longer match (a disk error,
a hand edit) is detected at load and fetched again. With the local store the store's own folder is the
cache, so nothing is copied, but the same check runs (there is nothing to fetch again from, so a mismatch
is an error).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from pathlib import Path

from flashml.errors import FlashMLError
from flashml.storage.base import CHECKSUMS_NAME, ArtifactStore, file_sha256
from flashml.storage.scratch import remove_path

log = logging.getLogger("flashml.cache")


class ArtifactCorruptError(FlashMLError):
    status = 500
    code = "artifact_corrupt"


def version_prefix(model: str, version: int) -> str:
    return f"models/{model}/v{version}/"


class ModelCache:
    def __init__(self, store: ArtifactStore, root: Path) -> None:
        self.store = store
        self.root = root  # <data_dir>/cache/models for a remote store
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def shared(self) -> bool:
        """True when the store's folders are on this disk and serve as the cache (no copy)."""
        return self.store.local_path("models") is not None

    def folder(self, model: str, version: int) -> Path:
        local = self.store.local_path(version_prefix(model, version).rstrip("/"))
        return local if local is not None else self.root / model / f"v{version}"

    def ensure(self, model: str, version: int, checksums: dict[str, str] | None = None) -> Path:
        """The verified local folder of a version, fetched from the store when missing or damaged."""
        with self._lock(model, version):
            folder = self.folder(model, version)
            sums = checksums if checksums else self._local_sums(folder)
            if folder.is_dir() and (sums is None and self.shared or sums and not self._damaged(folder, sums)):
                return folder
            if self.shared:
                bad = self._damaged(folder, sums or {}) if folder.is_dir() else ["(the whole folder)"]
                raise ArtifactCorruptError(f"The files of {model} v{version} do not match the checksums recorded "
                                           f"at publication ({', '.join(bad[:3])}); upload it again.",
                                           details={"files": bad})
            if folder.is_dir():
                log.warning("cached %s v%d does not match its checksums: fetching it again", model, version)
            return self._fetch(model, version, folder, sums)

    def evict(self, model: str, version: int) -> None:
        if self.shared:
            return
        folder = self.root / model / f"v{version}"
        if folder.exists():
            remove_path(folder)
        if folder.parent.is_dir() and not any(folder.parent.iterdir()):
            folder.parent.rmdir()

    def cached(self) -> list[tuple[str, int]]:
        """Every (model, version) folder in a remote store's cache."""
        if self.shared or not self.root.is_dir():
            return []
        return [(m.name, int(v.name[1:])) for m in self.root.iterdir() if m.is_dir()
                for v in m.iterdir() if v.name.startswith("v") and v.name[1:].isdigit()]

    def _lock(self, model: str, version: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((model, version), threading.Lock())

    @staticmethod
    def _local_sums(folder: Path) -> dict[str, str] | None:
        try:
            return json.loads((folder / CHECKSUMS_NAME).read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _damaged(folder: Path, sums: dict[str, str]) -> list[str]:
        bad = []
        for rel, digest in sorted(sums.items()):
            path = folder / rel
            if not path.is_file() or file_sha256(path) != digest:
                bad.append(rel)
        return bad

    def _fetch(self, model: str, version: int, folder: Path, sums: dict[str, str] | None) -> Path:
        prefix = version_prefix(model, version)
        tmp = self.root / ".fetch" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            if sums is None:  # no record of the checksums: the store's manifest is the reference
                self.store.get_file(prefix + CHECKSUMS_NAME, tmp / CHECKSUMS_NAME)
                sums = json.loads((tmp / CHECKSUMS_NAME).read_text())
            for rel, digest in sorted(sums.items()):
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.store.get_file(prefix + rel, dest)
                if file_sha256(dest) != digest:
                    raise ArtifactCorruptError(f"{prefix}{rel} in the artifact store does not match the checksum "
                                               f"recorded at publication; upload {model} again.",
                                               details={"files": [rel]})
            (tmp / CHECKSUMS_NAME).write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
            if folder.exists():
                remove_path(folder)
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, folder)
            log.info("fetched %s v%d into the local cache", model, version)
            return folder
        finally:
            remove_path(tmp)
