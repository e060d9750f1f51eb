"""The artifact store on local disk: ``<data_dir>/<key>``, the default that needs no set-up.

Writes go to a temporary file in ``tmp/store`` (same file system), then ``os.replace``: an object is there
whole or not at all. A published version folder arrives with one ``os.rename`` of its staging folder.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from flashml.storage.base import ArtifactStore, ObjectInfo, check_key, check_prefix
from flashml.storage.scratch import remove_path

_TOP = ("uploads", "models", "incoming")  # the folders of the canonical layout; nothing else is listed


class LocalArtifactStore(ArtifactStore):
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp" / "store"

    def prepare(self) -> None:
        # Private whatever the umask; each folder named, as parents made on the way get the umask's mode.
        for d in (self.root, *(self.root / t for t in _TOP), self.tmp.parent, self.tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)

    def check(self) -> None:
        self.root.stat()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _temp(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / uuid.uuid4().hex

    def _place(self, tmp: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        tmp = self._temp()
        try:
            if move:
                os.rename(path, tmp)
            else:
                shutil.copyfile(path, tmp)
            self._place(tmp, key)
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, key: str, stream: BinaryIO, size: int, *, sha256: str | None = None) -> None:
        tmp = self._temp()
        try:
            with open(tmp, "wb") as out:
                left = size
                while left > 0 and (chunk := stream.read(min(left, 1 << 20))):
                    out.write(chunk)
                    left -= len(chunk)
            if left:
                raise ValueError(f"the stream ended {left} bytes short of {size}")
            self._place(tmp, key)
        finally:
            tmp.unlink(missing_ok=True)

    def get_file(self, key: str, dest: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise FileNotFoundError(key)
        part = dest.with_name(dest.name + ".part")
        shutil.copyfile(src, part)
        os.replace(part, dest)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return ObjectInfo(path.stat().st_size, None) if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        folder = self.root / check_prefix(prefix)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        trash = self._temp()  # rename first so the folder disappears at once, then delete at leisure
        os.rename(folder, trash)
        remove_path(trash)
        self._prune(folder.parent)
        return count

    def list_prefix(self, prefix: str) -> list[str]:
        folder = self.root / check_prefix(prefix)
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())

    def presigned_put_url(self, key: str, expires_s: float) -> str | None:
        return None

    def start_multipart(self, key: str) -> str:
        check_key(key)
        return "local"

    def presigned_part_url(self, key: str, multipart_id: str, part: int, expires_s: float) -> str | None:
        return None

    def _part_key(self, key: str, part: int) -> str:
        return f"{key}.parts/{part:05d}"

    def put_part(self, key: str, multipart_id: str, part: int, path: Path) -> None:
        self.put_file(self._part_key(key, part), path, move=True)

    def complete_multipart(self, key: str, multipart_id: str, parts: int) -> None:
        paths = [self._path(self._part_key(key, n)) for n in range(1, parts + 1)]
        missing = [n for n, p in enumerate(paths, 1) if not p.is_file()]
        if missing:
            raise ValueError(f"part {missing[0]} of {parts} has not arrived")
        tmp = self._temp()
        try:
            with open(tmp, "wb") as out:
                for p in paths:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
            self._place(tmp, key)
        finally:
            tmp.unlink(missing_ok=True)
        self.abort_multipart(key, multipart_id)

    def abort_multipart(self, key: str, multipart_id: str) -> None:
        self.delete_prefix(key + ".parts/")

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def publish_dir(self, prefix: str, src: Path, files: Iterable[str]) -> None:
        """One atomic rename: a crash leaves either no version folder or a complete one."""
        target = self.root / check_prefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # left by a crash after the rename and before the record said ready
            self.delete_prefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, target)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty, up to (not including) the top folders of the layout."""
        while folder != self.root and folder.parent != self.root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
