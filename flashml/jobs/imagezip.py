"""Zip-of-images datasets: every image file in the zip is one row, named by its path in the zip.

A zip is data from a stranger, checked from its central directory before any member is read: names that could
point out of a folder (absolute, ``..``, backslashes), links and device files, duplicate names, more files
than ``dataset_zip_max_files`` and more bytes unpacked than ``dataset_zip_max_bytes`` are refused with a 400.
Reading is bounded as well: Python's zipfile never yields more bytes than a member's declared size (and checks
its CRC), so the declared sizes checked at upload bound what a job reads.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashml.errors import BadRequestError, FlashMLError
from flashml.registry.archive import safe_member_path

COLUMN = "image"


@dataclass(frozen=True)
class ZipLimits:
    max_files: int = 100_000
    max_bytes: int = 16 << 30


def _refuse(message: str, code: str, **details: Any) -> BadRequestError:
    return BadRequestError(message, code=code, details=details or None)


def _skipped(name: str) -> bool:
    """Folders and the litter of archivers (macOS resource forks, hidden files) are not rows."""
    parts = name.split("/")
    return name.endswith("/") or parts[0] == "__MACOSX" or parts[-1].startswith(".")


def members(path: Path, name: str, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The zip's image members, in the zip's order, each checked; a 400 that names the first that is not safe."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:
        raise _refuse(f"{name!r} is not a readable zip file ({exc}).", "bad_dataset") from None
    out, seen, total = [], set(), 0
    for info in infos:
        member = info.filename
        try:
            safe = safe_member_path(member)
        except FlashMLError:
            raise _refuse(f"Zip member {member!r} has an unsafe path (absolute, '..', a backslash or empty): repack "
                          "the zip with plain relative paths.", "unsafe_zip_member", member=member) from None
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or (mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR)):
            raise _refuse(f"Zip member {member!r} is a link or a special file; a dataset zip holds plain image "
                          "files.", "unsafe_zip_member", member=member)
        if info.is_dir() or _skipped(member):
            continue
        if safe in seen:
            raise _refuse(f"Zip member {member!r} appears more than once; each image's name is its row id.",
                          "duplicate_zip_member", member=member)
        seen.add(safe)
        out.append(info)
        if len(out) > limits.max_files:
            raise _refuse(f"{name!r} holds more than {limits.max_files} files (setting dataset_zip_max_files).",
                          "too_many_files", max_files=limits.max_files)
        total += info.file_size
        if total > limits.max_bytes:
            raise _refuse(f"{name!r} unpacks to more than {limits.max_bytes} bytes (reached at {member!r}; setting "
                          "dataset_zip_max_bytes): a zip bomb, or too big a dataset.", "zip_too_large",
                          member=member, max_bytes=limits.max_bytes)
    if not out:
        raise _refuse(f"{name!r} holds no image files.", "bad_dataset")
    return out


def inspect(path: Path, name: str, limits: ZipLimits) -> tuple[int, list[dict[str, Any]]]:
    return len(members(path, name, limits)), [{"name": COLUMN, "kind": "images"}]


def read(path: Path, chunk_rows: int, start: int, limits: ZipLimits
         ) -> Iterator[tuple[int, list[str], list[bytes | str]]]:
    """(first row, file names, image bytes, or why a member could not be read) per chunk, from row ``start``."""
    infos = members(path, path.name, limits)
    with zipfile.ZipFile(path) as zf:
        for s in range(start, len(infos), chunk_rows):
            part = infos[s:s + chunk_rows]
            data: list[bytes | str] = []
            for info in part:
                try:
                    data.append(zf.read(info))
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
                    data.append(f"cannot be unpacked ({exc})")
            yield s, [i.filename for i in part], data
