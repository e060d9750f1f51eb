"""The artifact store: where uploaded bundles and published model files live, on disk or in S3.

Keys are ``/``-separated relative paths. The canonical layout:

- ``uploads/<user>/<model>-v<version>.<ext>``: the bundle as it was uploaded;
- ``models/<model>/v<version>/...``: the validated model, with ``checksums.json`` (sha256 per file);
- ``incoming/<upload id>``: bytes of a direct upload that is not complete yet.

Every method is blocking (call it through ``asyncio.to_thread``). A store that cannot be reached raises
``StorageUnavailableError`` (503 ``storage_unavailable``); a missing object raises ``FileNotFoundError``.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flashml.errors import BadRequestError, UnavailableError

CHECKSUMS_NAME = "checksums.json"  # written last at publication: a version prefix without it is incomplete
_SEGMENT = re.compile(r"^[A-Za-z0-9_.@+=-][A-Za-z0-9_.@+= -]*$")


class StorageUnavailableError(UnavailableError):
    code = "storage_unavailable"

    def __init__(self, what: str, cause: object = None, *, why: str = "") -> None:
        # The cause (an exception) stays out of the message: people read ``why``, in words.
        detail = f" ({why})" if why else ""
        super().__init__(f"The artifact storage is unreachable, so {what} cannot be done now{detail}; models that "
                         "are already loaded keep serving. Try again when the storage is back.",
                         code="storage_unavailable")


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    sha256: str | None  # None when the store does not know it


def check_key(key: str) -> str:
    """Refuse keys that could leave the store's root: absolute, ``..``, empty segments."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise BadRequestError(f"{key!r} is not a valid storage key.", code="bad_storage_key")
    return key


def check_prefix(prefix: str) -> str:
    """A folder prefix: a key ending in ``/`` (so ``models/a/v1/`` never matches ``models/a/v10``)."""
    check_key(prefix.rstrip("/"))
    return prefix.rstrip("/") + "/"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ArtifactStore(abc.ABC):
    """One place for artifacts. ``kind`` is ``local`` or ``s3``."""

    kind: str

    @abc.abstractmethod
    def prepare(self) -> None:
        """Make the store usable (create the folder or bucket); raises when unreachable."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``StorageUnavailableError`` when the store cannot be reached now."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        """Store a local file under ``key``; with ``move`` the source may be consumed (renamed)."""

    @abc.abstractmethod
    def put_stream(self, key: str, stream: BinaryIO, size: int, *, sha256: str | None = None) -> None:
        """Store ``size`` bytes read from ``stream``."""

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> None:
        """Copy an object to a local file (written whole or not at all)."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and sha256 (when known) of an object, or None when there is none."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; a missing one is fine."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under a folder prefix; returns how many."""

    @abc.abstractmethod
    def list_prefix(self, prefix: str) -> list[str]:
        """Every key under a folder prefix, sorted."""

    @abc.abstractmethod
    def presigned_put_url(self, key: str, expires_s: float) -> str | None:
        """A URL a client may PUT the object's bytes to, without FlashML in the way; None for local disk."""

    # ---- multipart: big files in parts, each PUT on its own (presigned for S3), then joined ----

    @abc.abstractmethod
    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload of ``key``; returns its id."""

    @abc.abstractmethod
    def presigned_part_url(self, key: str, multipart_id: str, part: int, expires_s: float) -> str | None:
        """A URL to PUT part ``part`` (1, 2, ...) to directly; None when parts go through FlashML."""

    @abc.abstractmethod
    def put_part(self, key: str, multipart_id: str, part: int, path: Path) -> None:
        """Store one part from a local file (the path may be consumed)."""

    @abc.abstractmethod
    def complete_multipart(self, key: str, multipart_id: str, parts: int) -> None:
        """Join parts 1..``parts`` into the object; ``ValueError`` names a missing part."""

    @abc.abstractmethod
    def abort_multipart(self, key: str, multipart_id: str) -> None:
        """Drop a multipart upload and its parts; an unknown one is fine."""

    def local_path(self, key: str) -> Path | None:
        """Where the object already lies on this machine's disk (local store), else None."""
        return None

    def publish_dir(self, prefix: str, src: Path, files: Iterable[str]) -> None:
        """Store a validated folder under ``prefix``, ``checksums.json`` last so a half-copy never looks whole."""
        prefix = check_prefix(prefix)
        names = sorted(f for f in files if f != CHECKSUMS_NAME)
        for name in names:
            self.put_file(prefix + name, src / name)
        if (src / CHECKSUMS_NAME).exists():
            self.put_file(prefix + CHECKSUMS_NAME, src / CHECKSUMS_NAME)
